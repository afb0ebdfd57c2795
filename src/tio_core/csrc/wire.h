/* Facts of the wire for the C kernels: the twin of tio_core/wire.py.
 * module.c exports each constant on tio_core._ckernels and
 * tests/kernels/test_wire_constants.py checks them against wire.py, so the two
 * homes cannot drift apart. */
#ifndef TIO_WIRE_H
#define TIO_WIRE_H

/* IP */
#define TIO_MAX_IP_PACKET 65535 /* 16-bit IPv4 total length; the most a TUN takes in one write */
enum { TIO_IPPROTO_TCP = 6, TIO_IPPROTO_UDP = 17 };
enum { TIO_IPV4_MIN_HDR = 20, TIO_IPV6_HDR = 40 };
/* byte offsets inside the IPv4 header */
enum { TIO_IPV4_TOTAL_LENGTH = 2, TIO_IPV4_ID = 4, TIO_IPV4_FRAG = 6, TIO_IPV4_PROTOCOL = 9, TIO_IPV4_CHECKSUM = 10 };
#define TIO_IPV4_DF 0x4000 /* "don't fragment" in the flags/fragment field */
/* byte offsets inside the IPv6 header */
enum { TIO_IPV6_PAYLOAD_LENGTH = 4, TIO_IPV6_NEXT_HEADER = 6 };

/* TCP / UDP */
enum { TIO_TCP_MIN_HDR = 20, TIO_UDP_HDR = 8 };
enum { TIO_TCP_SEQ = 4, TIO_TCP_DATA_OFFSET = 12, TIO_TCP_FLAGS = 13, TIO_UDP_LENGTH = 4 };
enum {
    TIO_TCP_FIN = 0x01, TIO_TCP_SYN = 0x02, TIO_TCP_RST = 0x04, TIO_TCP_PSH = 0x08,
    TIO_TCP_ACK = 0x10, TIO_TCP_URG = 0x20, TIO_TCP_ECE = 0x40, TIO_TCP_CWR = 0x80,
};

/* what a Linux TUN takes in one GSO write: UDP_MAX_SEGMENTS, and the older kernels' value */
enum { TIO_UDP_GSO_MAX_SEGMENTS = 128, TIO_UDP_GSO_MAX_SEGMENTS_OLD = 64 };

/* virtio_net_hdr */
#define TIO_VIRTIO_NET_HDR_LEN 10
enum { TIO_NEEDS_CSUM = 1, TIO_DATA_VALID = 2, TIO_RSC_INFO = 4 };
enum { TIO_GSO_NONE = 0, TIO_GSO_TCPV4 = 1, TIO_GSO_UDP = 3, TIO_GSO_TCPV6 = 4, TIO_GSO_UDP_L4 = 5, TIO_GSO_ECN = 0x80 };
enum { TIO_TCP_CSUM_OFFSET = 16, TIO_UDP_CSUM_OFFSET = 6 };

#endif
