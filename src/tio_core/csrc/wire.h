/* Facts of the wire for the C kernels: the twin of tio_core/wire.py.
 * module.c exports each constant on tio_core._ckernels and
 * tests/kernels/test_wire_constants.py checks them against wire.py, so the two
 * homes cannot drift apart. Offsets are in bytes from the start of their header. */
#ifndef TIO_WIRE_H
#define TIO_WIRE_H
#include <stddef.h>
#include <stdint.h>

/* IP */
#define TIO_MAX_IP_PACKET 65535 /* 16-bit IPv4 total length; the most a TUN takes in one write */
enum { TIO_IPPROTO_TCP = 6, TIO_IPPROTO_UDP = 17 };
enum { TIO_IPV4_MIN_HDR = 20, TIO_IPV6_HDR = 40 };
/* IPv4 header (the destination address follows the source) */
enum {
    TIO_IPV4_TOS = 1, TIO_IPV4_TOTAL_LENGTH = 2, TIO_IPV4_ID = 4, TIO_IPV4_FRAG = 6, TIO_IPV4_TTL = 8,
    TIO_IPV4_PROTOCOL = 9, TIO_IPV4_CHECKSUM = 10, TIO_IPV4_SRC = 12, TIO_IPV4_ADDR_LEN = 4,
};
/* the 16-bit flags/fragment field: "don't fragment", "more fragments", the fragment offset */
enum { TIO_IPV4_DF = 0x4000, TIO_IPV4_MF = 0x2000, TIO_IPV4_FRAG_OFFSET_MASK = 0x1FFF };
/* IPv6 header (the destination address follows the source) */
enum {
    TIO_IPV6_PAYLOAD_LENGTH = 4, TIO_IPV6_NEXT_HEADER = 6, TIO_IPV6_HOP_LIMIT = 7, TIO_IPV6_SRC = 8,
    TIO_IPV6_ADDR_LEN = 16,
};
/* IPv6 extension headers: next header at 0, length at 1 in 8-byte units beyond the first 8 */
enum { TIO_IPV6_EXT_NEXT_HEADER = 0, TIO_IPV6_EXT_LENGTH = 1, TIO_IPV6_EXT_UNIT = 8 };
/* next-header numbers of the IPv6 extension headers (IANA), the L4 header follows them */
enum {
    TIO_IPPROTO_HOPOPTS = 0, TIO_IPPROTO_ROUTING = 43, TIO_IPPROTO_FRAGMENT = 44, TIO_IPPROTO_ESP = 50,
    TIO_IPPROTO_AH = 51, TIO_IPPROTO_DSTOPTS = 60, TIO_IPPROTO_MH = 135, TIO_IPPROTO_HIP = 139,
    TIO_IPPROTO_SHIM6 = 140, TIO_IPPROTO_EXP1 = 253, TIO_IPPROTO_EXP2 = 254,
};

/* TCP / UDP */
enum { TIO_TCP_MIN_HDR = 20, TIO_UDP_HDR = 8 };
enum { TIO_L4_PORTS_LEN = 4 }; /* source and destination port: the first bytes of a TCP or UDP header */
/* TCP header */
enum {
    TIO_TCP_SEQ = 4, TIO_TCP_ACK_SEQ = 8, TIO_TCP_DATA_OFFSET = 12, TIO_TCP_FLAGS = 13, TIO_TCP_WINDOW = 14,
    TIO_TCP_URG_PTR = 18,
};
enum { TIO_TCP_RESERVED_MASK = 0x0F }; /* low nibble of the data offset byte */
/* UDP header */
enum { TIO_UDP_LENGTH = 4 };
enum {
    TIO_TCP_FIN = 0x01, TIO_TCP_SYN = 0x02, TIO_TCP_RST = 0x04, TIO_TCP_PSH = 0x08,
    TIO_TCP_ACK = 0x10, TIO_TCP_URG = 0x20, TIO_TCP_ECE = 0x40, TIO_TCP_CWR = 0x80,
};

/* what a Linux TUN takes in one GSO write: UDP_MAX_SEGMENTS, and the older kernels' value */
enum { TIO_UDP_GSO_MAX_SEGMENTS = 128, TIO_UDP_GSO_MAX_SEGMENTS_OLD = 64 };

/* virtio_net_hdr */
#define TIO_VIRTIO_NET_HDR_LEN 10
enum { TIO_NEEDS_CSUM = 1, TIO_DATA_VALID = 2, TIO_RSC_INFO = 4 };
enum {
    TIO_GSO_NONE = 0, TIO_GSO_TCPV4 = 1, TIO_GSO_UDP = 3, TIO_GSO_TCPV6 = 4, TIO_GSO_UDP_L4 = 5,
    TIO_GSO_ECN = 0x80, /* a bit OR-ed onto a TCP type */
};
/* csum_offset: where the checksum field lies in the transport header */
enum { TIO_TCP_CSUM_OFFSET = 16, TIO_UDP_CSUM_OFFSET = 6 };

/* Fields packed into nibbles. */
static inline int tio_ip_version(const uint8_t *ip)
{
    return ip[0] >> 4;
}

static inline size_t tio_ipv4_hdr_len(const uint8_t *ip) /* IHL, in 32-bit words */
{
    return (size_t)(ip[0] & 0x0F) * 4;
}

static inline size_t tio_tcp_hdr_len(const uint8_t *tcp) /* data offset, in 32-bit words */
{
    return (size_t)(tcp[TIO_TCP_DATA_OFFSET] >> 4) * 4;
}

#endif
