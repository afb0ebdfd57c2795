/* Validation and segmentation kernels of tio_core._ckernels: twins of
 * gso_info_from_vnet / segmented_size / segment / segment_into in
 * tio_core.kernels._pykernels, with the same results, exceptions and messages.
 *
 * Memory safety: every offset read from the packet or its metadata is checked
 * against the buffer length before it is used (see transport_end), and the
 * output size is computed before anything is written. */
#include "tio.h"
#include "csum.h"
#include "wire.h"

PyObject *tio_MalformedPacket;
PyObject *tio_proto_tcp, *tio_proto_udp;
static PyObject *gsoinfo_type, *no_gso, *str_data, *str_gso;
/* GSOProto.TCP and GSOProto.UDP as numbers, read from tio_core.contract at init */
static long proto_tcp_value, proto_udp_value;

/* Hostile geometry refused (as in the pure twin, which explains the values):
 * a tiny gso size with huge headers would ask for gigabytes, a tiny gso size
 * alone for tens of thousands of segments. */
#define MAX_SEGMENTED_SIZE (16 << 20)
#define MAX_SEGMENT_COUNT 4096

static const char *proto_name(int tcp)
{
    return tcp ? "TCP" : "UDP";
}

/* Raises MalformedPacket with a message naming the int object(s) exactly. */
static void malformed_numbers(const char *format, PyObject *a, PyObject *b)
{
    PyObject *na = PyNumber_Index(a);
    PyObject *nb = b != NULL ? PyNumber_Index(b) : NULL;
    if (na != NULL && (b == NULL || nb != NULL))
        PyErr_Format(tio_MalformedPacket, format, na, nb);
    Py_XDECREF(na);
    Py_XDECREF(nb);
}

int tio_ip_version_checked(const uint8_t *p, Py_ssize_t len, PyObject *error, const char *bad_version,
                           Py_ssize_t *min_hdr)
{
    int version = len ? tio_ip_version(p) : 0;
    if (version != 4 && version != 6) {
        PyErr_Format(error, bad_version, version);
        return -1;
    }
    *min_hdr = version == 4 ? TIO_IPV4_MIN_HDR : TIO_IPV6_HDR;
    return version;
}

/* The IP version of p, checked to be 4 or 6 with a complete fixed header; -1 with MalformedPacket. */
static int ip_version(const uint8_t *p, Py_ssize_t len)
{
    Py_ssize_t min_len;
    int version = tio_ip_version_checked(p, len, tio_MalformedPacket, "IP version %d is neither 4 nor 6", &min_len);
    if (version > 0 && len < min_len) {
        PyErr_Format(tio_MalformedPacket, "packet of %zd bytes is shorter than an IPv%d header (%zd bytes)", len,
                     version, min_len);
        return -1;
    }
    return version;
}

/* The protocol of the header at cs behind an IPv4 header (complete, cs < size),
 * or -1 with MalformedPacket. */
static int ipv4_transport(const uint8_t *p, Py_ssize_t cs)
{
    Py_ssize_t ihl_bytes = (Py_ssize_t)tio_ipv4_hdr_len(p);
    if (ihl_bytes < TIO_IPV4_MIN_HDR) {
        PyErr_Format(tio_MalformedPacket, "IPv4 header length %zd is below %d", ihl_bytes, TIO_IPV4_MIN_HDR);
        return -1;
    }
    if (cs != ihl_bytes) {
        PyErr_Format(tio_MalformedPacket, "csum_start %zd does not match the IPv4 header length %zd", cs, ihl_bytes);
        return -1;
    }
    if (tio_get16(p + TIO_IPV4_FRAG) & (TIO_IPV4_MF | TIO_IPV4_FRAG_OFFSET_MASK)) {
        PyErr_SetString(tio_MalformedPacket, "IPv4 fragment in a superpacket");
        return -1;
    }
    return p[TIO_IPV4_PROTOCOL];
}

/* The protocol of the header at cs behind an IPv6 header (complete, cs < size):
 * the extension headers between must be ones the kernel segments behind and
 * end exactly at cs. -1 with MalformedPacket. */
static int ipv6_transport(const uint8_t *p, Py_ssize_t size, Py_ssize_t cs)
{
    if (cs < TIO_IPV6_HDR) {
        PyErr_Format(tio_MalformedPacket, "csum_start %zd is inside the IPv6 header", cs);
        return -1;
    }
    int next_header = p[TIO_IPV6_NEXT_HEADER];
    Py_ssize_t offset = TIO_IPV6_HDR;
    while (offset < cs) {
        if (next_header == TIO_IPPROTO_FRAGMENT || next_header == TIO_IPPROTO_AH) { /* the kernel drops these */
            PyErr_Format(tio_MalformedPacket, "IPv6 %s header in a superpacket (the kernel cannot segment it)",
                         next_header == TIO_IPPROTO_FRAGMENT ? "fragment" : "AH");
            return -1;
        }
        if (next_header != TIO_IPPROTO_HOPOPTS && next_header != TIO_IPPROTO_ROUTING &&
            next_header != TIO_IPPROTO_DSTOPTS) {
            PyErr_Format(tio_MalformedPacket, "IPv6 next header %d at offset %zd is not an extension header",
                         next_header, offset);
            return -1;
        }
        if (offset + TIO_IPV6_EXT_LENGTH + 1 > size) {
            PyErr_Format(tio_MalformedPacket, "IPv6 extension header at offset %zd is cut off", offset);
            return -1;
        }
        next_header = p[offset + TIO_IPV6_EXT_NEXT_HEADER];
        offset += (p[offset + TIO_IPV6_EXT_LENGTH] + 1) * TIO_IPV6_EXT_UNIT;
    }
    if (offset != cs) {
        PyErr_Format(tio_MalformedPacket, "IPv6 extension headers end at %zd, not at csum_start %zd", offset, cs);
        return -1;
    }
    return next_header;
}

/* Checks the L3 headers lead to a TCP (tcp) or UDP header at cs and returns
 * where that header ends (the real hdr_len), or -1 with MalformedPacket. */
static Py_ssize_t transport_end(const uint8_t *p, Py_ssize_t size, int version, Py_ssize_t cs, int tcp)
{
    if (cs >= size) {
        PyErr_Format(tio_MalformedPacket, "csum_start %zd is outside the %zd-byte packet", cs, size);
        return -1;
    }
    int next_header = version == 4 ? ipv4_transport(p, cs) : ipv6_transport(p, size, cs);
    if (next_header < 0)
        return -1;
    int want = tcp ? TIO_IPPROTO_TCP : TIO_IPPROTO_UDP;
    if (next_header != want) {
        PyErr_Format(tio_MalformedPacket, "IP protocol %d does not match GSO proto %s (%d)", next_header,
                     proto_name(tcp), want);
        return -1;
    }
    Py_ssize_t end;
    if (tcp) {
        if (cs + TIO_TCP_MIN_HDR > size) {
            PyErr_Format(tio_MalformedPacket, "TCP header at csum_start %zd does not fit in the %zd-byte packet", cs,
                         size);
            return -1;
        }
        Py_ssize_t doff = (Py_ssize_t)tio_tcp_hdr_len(p + cs);
        if (doff < TIO_TCP_MIN_HDR) {
            PyErr_Format(tio_MalformedPacket, "TCP data offset %zd is below %d", doff, TIO_TCP_MIN_HDR);
            return -1;
        }
        end = cs + doff;
    } else {
        end = cs + TIO_UDP_HDR;
    }
    if (end > size) {
        PyErr_Format(tio_MalformedPacket, "%s header ends at %zd, beyond the %zd-byte packet", proto_name(tcp), end,
                     size);
        return -1;
    }
    return end;
}

/* The segment count of a superpacket whose headers (hdr_len bytes) are
 * valid, or -1 with MalformedPacket for geometry tio does not segment;
 * *total gets the bytes all segments occupy. */
static Py_ssize_t segment_count(Py_ssize_t len, int version, Py_ssize_t hdr_len, Py_ssize_t size, Py_ssize_t *total)
{
    Py_ssize_t payload = len - hdr_len;
    Py_ssize_t count = payload > 0 ? (payload + size - 1) / size : 1;
    Py_ssize_t largest = hdr_len + (size < payload ? size : payload);
    /* what the 16-bit length field holds: the IPv4 total length, the IPv6 payload length */
    Py_ssize_t ip_len = version == 4 ? largest : largest - TIO_IPV6_HDR;
    if (ip_len > UINT16_MAX) {
        PyErr_Format(tio_MalformedPacket, "a segment would be %zd bytes, more than an IPv%d packet can hold", largest,
                     version);
        return -1;
    }
    if (count > MAX_SEGMENT_COUNT) {
        PyErr_Format(tio_MalformedPacket, "%zd segments of %zd bytes, above the %d-segment limit", count, size,
                     MAX_SEGMENT_COUNT);
        return -1;
    }
    *total = count * hdr_len + payload;
    if (*total > MAX_SEGMENTED_SIZE) {
        PyErr_Format(tio_MalformedPacket, "segmenting would produce %zd bytes, above the %d-byte limit", *total,
                     MAX_SEGMENTED_SIZE);
        return -1;
    }
    return count;
}

static const char *gso_type_name(int base)
{
    switch (base) {
    case TIO_GSO_TCPV4:
        return "TCPV4";
    case TIO_GSO_TCPV6:
        return "TCPV6";
    case TIO_GSO_UDP_L4:
        return "UDP_L4";
    default:
        return NULL;
    }
}

/* Checks what the virtio_net_hdr fields say on their own (for a plain packet,
 * that its NEEDS_CSUM field lies inside the len-byte packet). Returns the GSO
 * type without the ECN bit, TIO_GSO_NONE for a plain packet, with *name set
 * for a superpacket; or -1 with MalformedPacket. */
static int vnet_gso_type(const long f[TIO_VNET_NFIELDS], Py_ssize_t len, const char **name)
{
    long flags = f[TIO_VNET_FLAGS], cs = f[TIO_VNET_CSUM_START], csum_offset = f[TIO_VNET_CSUM_OFFSET];
    if (flags & TIO_RSC_INFO) {
        PyErr_Format(tio_MalformedPacket, "virtio_net_hdr flags 0x%x have RSC_INFO set, which is not supported",
                     (int)flags);
        return -1;
    }
    int base = (int)(f[TIO_VNET_GSO_TYPE] & ~TIO_GSO_ECN), ecn = (int)(f[TIO_VNET_GSO_TYPE] & TIO_GSO_ECN);
    if (base == TIO_GSO_NONE) {
        if (ecn) {
            PyErr_SetString(tio_MalformedPacket, "ECN bit set on gso_type NONE; it is only valid on a TCP type");
            return -1;
        }
        if ((flags & TIO_NEEDS_CSUM) && cs + csum_offset + 2 > len) {
            PyErr_Format(tio_MalformedPacket,
                         "checksum field at csum_start %ld + csum_offset %ld lies outside the %zd-byte packet", cs,
                         csum_offset, len);
            return -1;
        }
        return TIO_GSO_NONE;
    }
    if (base == TIO_GSO_UDP) {
        PyErr_SetString(tio_MalformedPacket, "legacy UDP fragmentation offload (GSO_UDP) is not supported");
        return -1;
    }
    if ((*name = gso_type_name(base)) == NULL) {
        PyErr_Format(tio_MalformedPacket, "unknown GSO type %d", base);
        return -1;
    }
    if (ecn && base == TIO_GSO_UDP_L4) {
        PyErr_Format(tio_MalformedPacket, "ECN bit set on non-TCP GSO type %s", *name);
        return -1;
    }
    if (f[TIO_VNET_GSO_SIZE] == 0) {
        PyErr_Format(tio_MalformedPacket, "GSO type %s with gso_size 0", *name);
        return -1;
    }
    return base;
}

/* Checks a superpacket of GSO type `base` against its bytes and returns its
 * real hdr_len (the kernel's value can span the whole first segment), or -1
 * with MalformedPacket. */
static Py_ssize_t superpacket_hdr_len(const long f[TIO_VNET_NFIELDS], const uint8_t *p, Py_ssize_t len, int base,
                                      const char *name)
{
    int version = ip_version(p, len);
    if (version < 0)
        return -1;
    if ((base == TIO_GSO_TCPV4 && version != 4) || (base == TIO_GSO_TCPV6 && version != 6)) {
        PyErr_Format(tio_MalformedPacket, "GSO type %s on an IPv%d packet", name, version);
        return -1;
    }
    if (f[TIO_VNET_HDR_LEN] > len) {
        PyErr_Format(tio_MalformedPacket, "hdr_len %ld exceeds the %zd-byte packet", f[TIO_VNET_HDR_LEN], len);
        return -1;
    }
    int tcp = base != TIO_GSO_UDP_L4;
    Py_ssize_t hdr_len = transport_end(p, len, version, f[TIO_VNET_CSUM_START], tcp);
    if (hdr_len < 0)
        return -1;
    long want_offset = tcp ? TIO_TCP_CSUM_OFFSET : TIO_UDP_CSUM_OFFSET;
    if (f[TIO_VNET_CSUM_OFFSET] != want_offset) {
        PyErr_Format(tio_MalformedPacket, "csum_offset %ld is not the %s checksum offset %ld", f[TIO_VNET_CSUM_OFFSET],
                     proto_name(tcp), want_offset);
        return -1;
    }
    Py_ssize_t total; /* a read never hands out what segment() refuses */
    if (segment_count(len, version, hdr_len, f[TIO_VNET_GSO_SIZE], &total) < 0)
        return -1;
    return hdr_len;
}

int tio_check_superpacket(const long f[TIO_VNET_NFIELDS], const uint8_t *p, Py_ssize_t len)
{
    const char *name = NULL;
    int base = vnet_gso_type(f, len, &name);
    if (base < 0)
        return -1;
    if (base == TIO_GSO_NONE)
        return 0;
    return superpacket_hdr_len(f, p, len, base, name) < 0 ? -1 : 0;
}

/* GSOInfo(size, hdr_len, csum_start, proto) as tuple.__new__(GSOInfo, items),
 * which is what GSOInfo._make does, without the named tuple's Python-level __new__. */
static PyObject *new_gsoinfo(long size, Py_ssize_t hdr_len, long csum_start, int tcp)
{
    PyObject *items = Py_BuildValue("(lnlO)", size, hdr_len, csum_start, tcp ? tio_proto_tcp : tio_proto_udp);
    if (items == NULL)
        return NULL;
    PyObject *new_args = PyTuple_Pack(1, items);
    Py_DECREF(items);
    if (new_args == NULL)
        return NULL;
    PyObject *info = PyTuple_Type.tp_new((PyTypeObject *)gsoinfo_type, new_args, NULL);
    Py_DECREF(new_args);
    return info;
}

PyObject *tio_gso_info(const long f[TIO_VNET_NFIELDS], const uint8_t *p, Py_ssize_t len)
{
    const char *name = NULL;
    int base = vnet_gso_type(f, len, &name);
    if (base < 0)
        return NULL;
    if (base == TIO_GSO_NONE)
        return Py_NewRef(no_gso);
    Py_ssize_t hdr_len = superpacket_hdr_len(f, p, len, base, name);
    if (hdr_len < 0)
        return NULL;
    return new_gsoinfo(f[TIO_VNET_GSO_SIZE], hdr_len, f[TIO_VNET_CSUM_START], base != TIO_GSO_UDP_L4);
}

static PyObject *py_gso_info_from_vnet(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer pkt;
    long f[TIO_VNET_NFIELDS];
    if (tio_packet_and_vnet(args, "OO:gso_info_from_vnet", 0, &pkt, f) < 0) /* (hdr, pkt), read only */
        return NULL;
    PyObject *result = tio_gso_info(f, pkt.buf, pkt.len);
    PyBuffer_Release(&pkt);
    return result;
}

/* The fields of a GSOInfo (tio_core.contract) in order. */
enum { GSOINFO_SIZE, GSOINFO_HDR_LEN, GSOINFO_CSUM_START, GSOINFO_PROTO, GSOINFO_NFIELDS };

/* A validated superpacket and the geometry of its segments. */
typedef struct {
    Py_buffer buf; /* held while the plan is in use */
    const uint8_t *p;
    Py_ssize_t len, size, hdr_len, cs, count, total;
    int version, tcp; /* tcp: 1 for TCP, 0 for UDP */
} plan_t;

/* Reads packet.data and packet.gso. Returns 1 with *plan filled (release
 * plan->buf afterwards) for a superpacket, 0 with a new reference in *plain
 * for a plain packet, -1 on error. */
static int plan_packet(PyObject *packet, plan_t *plan, PyObject **plain)
{
    int status = -1;
    PyObject *data = NULL, *gso = NULL, *fields = NULL;
    if ((data = PyObject_GetAttr(packet, str_data)) == NULL || (gso = PyObject_GetAttr(packet, str_gso)) == NULL)
        goto done;
    if ((fields = PyTuple_Check(gso) ? Py_NewRef(gso) : PySequence_Tuple(gso)) == NULL)
        goto done;
    if (PyTuple_GET_SIZE(fields) != GSOINFO_NFIELDS) {
        PyErr_Format(PyExc_TypeError, "GSOInfo must have %d fields, got %zd", GSOINFO_NFIELDS,
                     PyTuple_GET_SIZE(fields));
        goto done;
    }
    long long size, hdr_len, cs, proto;
    if (tio_as_ll(PyTuple_GET_ITEM(fields, GSOINFO_SIZE), &size) < 0)
        goto done;
    if (size <= 0) { /* not a superpacket */
        *plain = data;
        data = NULL;
        status = 0;
        goto done;
    }
    if (PyObject_GetBuffer(data, &plan->buf, PyBUF_SIMPLE) < 0)
        goto done;
    if (tio_as_ll(PyTuple_GET_ITEM(fields, GSOINFO_HDR_LEN), &hdr_len) < 0 ||
        tio_as_ll(PyTuple_GET_ITEM(fields, GSOINFO_CSUM_START), &cs) < 0 ||
        tio_as_ll(PyTuple_GET_ITEM(fields, GSOINFO_PROTO), &proto) < 0)
        goto fail;
    if (proto != proto_tcp_value && proto != proto_udp_value) {
        malformed_numbers("superpacket GSOInfo proto must be TCP or UDP, got %S",
                          PyTuple_GET_ITEM(fields, GSOINFO_PROTO), NULL);
        goto fail;
    }
    if (size > UINT16_MAX) { /* the virtio_net_hdr fields are 16-bit */
        malformed_numbers("gso size %S is above 65535", PyTuple_GET_ITEM(fields, GSOINFO_SIZE), NULL);
        goto fail;
    }
    if (cs < 0 || cs > UINT16_MAX || hdr_len < 0 || hdr_len > UINT16_MAX) {
        malformed_numbers("GSOInfo hdr_len %S / csum_start %S must be 0..65535",
                          PyTuple_GET_ITEM(fields, GSOINFO_HDR_LEN), PyTuple_GET_ITEM(fields, GSOINFO_CSUM_START));
        goto fail;
    }
    plan->p = plan->buf.buf;
    plan->len = plan->buf.len;
    plan->size = (Py_ssize_t)size;
    plan->cs = (Py_ssize_t)cs;
    plan->tcp = proto == proto_tcp_value;
    if ((plan->version = ip_version(plan->p, plan->len)) < 0)
        goto fail;
    Py_ssize_t real = transport_end(plan->p, plan->len, plan->version, plan->cs, plan->tcp);
    if (real < 0)
        goto fail;
    if (hdr_len != real) {
        PyErr_Format(tio_MalformedPacket, "GSOInfo hdr_len %zd does not match the packet headers (%zd)",
                     (Py_ssize_t)hdr_len, real);
        goto fail;
    }
    plan->hdr_len = real;
    if ((plan->count = segment_count(plan->len, plan->version, real, plan->size, &plan->total)) < 0)
        goto fail;
    status = 1;
    goto done;
fail:
    PyBuffer_Release(&plan->buf);
done:
    Py_XDECREF(data);
    Py_XDECREF(gso);
    Py_XDECREF(fields);
    return status;
}

/* The big-endian word sum of p[from..to), not folded. */
static inline uint64_t csum_range(const uint8_t *p, size_t from, size_t to)
{
    return tio_csum_add(0, p + from, to - from);
}

/* Writes the plan's segments back to back into out (plan->total bytes) and
 * their start offsets into offsets[0..count] (offsets[count] == total).
 *
 * The checksums are incremental: the header words that stay the same in
 * every segment are summed once, and each segment adds only its own length,
 * IPv4 ID, TCP sequence number and flags. Every summed piece starts at an
 * even offset, so the pieces' big-endian sums simply add up. */
static void write_segments(const plan_t *plan, uint8_t *out, Py_ssize_t *offsets)
{
    const uint8_t *p = plan->p, *l4 = plan->p + plan->cs;
    const Py_ssize_t hl = plan->hdr_len, cs = plan->cs, size = plan->size, payload = plan->len - plan->hdr_len;
    const int tcp = plan->tcp, v4 = plan->version == 4;
    const uint64_t pseudo = (v4 ? tio_csum_add(0, p + TIO_IPV4_SRC, 2 * TIO_IPV4_ADDR_LEN)
                                : tio_csum_add(0, p + TIO_IPV6_SRC, 2 * TIO_IPV6_ADDR_LEN)) +
                            (tcp ? TIO_IPPROTO_TCP : TIO_IPPROTO_UDP);
    /* IPv4 header without total length, ID and checksum (added per segment) */
    const uint64_t ip_fixed = v4 ? csum_range(p, 0, TIO_IPV4_TOTAL_LENGTH) +
                                       csum_range(p, TIO_IPV4_FRAG, TIO_IPV4_CHECKSUM) +
                                       csum_range(p, TIO_IPV4_SRC, (size_t)cs)
                                 : 0;
    /* TCP header without seq, data offset + flags and checksum; UDP header
     * without length and checksum (added per segment) */
    const uint64_t l4_fixed = tcp ? csum_range(l4, 0, TIO_TCP_SEQ) +
                                        csum_range(l4, TIO_TCP_ACK_SEQ, TIO_TCP_DATA_OFFSET) +
                                        csum_range(l4, TIO_TCP_WINDOW, TIO_TCP_CSUM_OFFSET) +
                                        csum_range(l4, TIO_TCP_URG_PTR, (size_t)(hl - cs))
                                  : csum_range(l4, 0, TIO_UDP_LENGTH);
    const uint16_t first_id = v4 ? tio_get16(p + TIO_IPV4_ID) : 0;
    const uint32_t first_seq = tcp ? tio_get32(l4 + TIO_TCP_SEQ) : 0;
    const Py_ssize_t field = cs + (tcp ? TIO_TCP_CSUM_OFFSET : TIO_UDP_CSUM_OFFSET);
    Py_ssize_t off = 0;
    for (Py_ssize_t i = 0; i < plan->count; i++) {
        const Py_ssize_t start = i * size;
        const Py_ssize_t chunk = payload - start < size ? payload - start : size;
        const Py_ssize_t seg_len = hl + chunk, l4_len = seg_len - cs;
        uint8_t *s = out + off, *sl4 = s + cs;
        memcpy(s, p, (size_t)hl);
        /* copy the payload and sum it in one pass */
        const uint64_t payload_sum = tio_csum_copy(0, s + hl, p + hl + start, (size_t)chunk);
        if (v4) {
            const uint16_t id = (uint16_t)(first_id + i);
            tio_put16(s + TIO_IPV4_TOTAL_LENGTH, (uint16_t)seg_len);
            tio_put16(s + TIO_IPV4_ID, id);
            tio_put16(s + TIO_IPV4_CHECKSUM, (uint16_t)~tio_csum_fold(ip_fixed + (uint64_t)seg_len + id));
        } else {
            tio_put16(s + TIO_IPV6_PAYLOAD_LENGTH, (uint16_t)(seg_len - TIO_IPV6_HDR));
        }
        uint64_t acc = pseudo + l4_fixed + payload_sum + ((uint64_t)l4_len >> 16) + ((uint64_t)l4_len & 0xFFFF);
        if (tcp) {
            const uint32_t seq = (uint32_t)(first_seq + (uint64_t)start);
            uint8_t flags = sl4[TIO_TCP_FLAGS];
            if (i != plan->count - 1)
                flags &= (uint8_t)~(TIO_TCP_FIN | TIO_TCP_PSH);
            if (i != 0)
                flags &= (uint8_t)~TIO_TCP_CWR;
            tio_put32(sl4 + TIO_TCP_SEQ, seq);
            sl4[TIO_TCP_FLAGS] = flags;
            acc += (seq >> 16) + (seq & 0xFFFF) + ((uint64_t)sl4[TIO_TCP_DATA_OFFSET] << 8 | flags);
        } else {
            tio_put16(sl4 + TIO_UDP_LENGTH, (uint16_t)l4_len);
            acc += (uint64_t)l4_len;
        }
        uint16_t value = (uint16_t)~tio_csum_fold(acc);
        if (value == 0 && !tcp)
            value = 0xFFFF; /* UDP: 0 would mean "no checksum" */
        tio_put16(s + field, value);
        offsets[i] = off;
        off += seg_len;
    }
    offsets[plan->count] = off;
}

/* One memoryview per segment of `exporter`'s bytes. Each view is a cheap
 * copy of one memoryview of the exporter narrowed to its segment, sharing the
 * exporter's managed buffer (what slicing does, minus the slice objects). */
static PyObject *segment_views(PyObject *exporter, const Py_ssize_t *offsets, Py_ssize_t count)
{
    PyObject *base = PyMemoryView_FromObject(exporter);
    if (base == NULL)
        return NULL;
    PyObject *list = PyList_New(count);
    if (list == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *view = PyMemoryView_FromObject(base);
        if (view == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        PyList_SET_ITEM(list, i, tio_narrowed_view(view, offsets[i], offsets[i + 1] - offsets[i]));
    }
done:
    Py_DECREF(base);
    return list;
}

static PyObject *plain_result(PyObject *data)
{
    PyObject *list = PyList_New(1);
    if (list == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    PyList_SET_ITEM(list, 0, data);
    return list;
}

/* Segments into `out` (a bytearray at least plan->total long) and returns the views. */
static PyObject *segment_to(const plan_t *plan, PyObject *out)
{
    Py_ssize_t *offsets = PyMem_Malloc((size_t)(plan->count + 1) * sizeof(Py_ssize_t));
    if (offsets == NULL)
        return PyErr_NoMemory();
    write_segments(plan, (uint8_t *)PyByteArray_AS_STRING(out), offsets);
    PyObject *views = segment_views(out, offsets, plan->count);
    PyMem_Free(offsets);
    return views;
}

static PyObject *py_segmented_size(PyObject *self, PyObject *packet)
{
    (void)self;
    plan_t plan;
    PyObject *plain = NULL;
    int kind = plan_packet(packet, &plan, &plain);
    if (kind < 0)
        return NULL;
    if (kind == 0) {
        Py_ssize_t n = PyObject_Size(plain);
        Py_DECREF(plain);
        return n < 0 ? NULL : PyLong_FromSsize_t(n);
    }
    PyBuffer_Release(&plan.buf);
    return PyLong_FromSsize_t(plan.total);
}

/* Whether segments of plan.total bytes can go into out: it does not hold the packet's own bytes and is large
 * enough once grown; 0 with an error otherwise. */
static int usable_output(const plan_t *plan, PyObject *out)
{
    const char *start = PyByteArray_AS_STRING(out);
    if ((const char *)plan->p < start + PyByteArray_GET_SIZE(out) && start < (const char *)plan->p + plan->len) {
        PyErr_SetString(PyExc_ValueError, "segment_into: the packet's bytes live in the output buffer");
        return 0;
    }
    return PyByteArray_GET_SIZE(out) >= plan->total || PyByteArray_Resize(out, plan->total) == 0;
}

/* segment() and segment_into(): the segments of packet in out (a bytearray), or in a fresh bytearray when out
 * is NULL; a plain packet is its own one segment and leaves out untouched. */
static PyObject *segment_packet(PyObject *packet, PyObject *out)
{
    plan_t plan;
    PyObject *plain = NULL;
    int kind = plan_packet(packet, &plan, &plain);
    if (kind <= 0)
        return kind < 0 ? NULL : plain_result(plain);
    PyObject *views = NULL;
    if (out == NULL) {
        PyObject *fresh = PyByteArray_FromStringAndSize(NULL, plan.total);
        if (fresh != NULL) {
            views = segment_to(&plan, fresh);
            Py_DECREF(fresh); /* the views keep it alive */
        }
    } else if (usable_output(&plan, out)) {
        views = segment_to(&plan, out);
    }
    PyBuffer_Release(&plan.buf);
    return views;
}

static PyObject *py_segment(PyObject *self, PyObject *packet)
{
    (void)self;
    return segment_packet(packet, NULL);
}

static PyObject *py_segment_into(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *packet, *out;
    if (!PyArg_ParseTuple(args, "OO:segment_into", &packet, &out))
        return NULL;
    if (!PyByteArray_Check(out)) {
        PyObject *name = PyType_GetName(Py_TYPE(out));
        if (name != NULL) {
            PyErr_Format(PyExc_TypeError, "segment_into needs a bytearray, got %U", name);
            Py_DECREF(name);
        }
        return NULL;
    }
    return segment_packet(packet, out);
}

PyMethodDef tio_segment_methods[] = {
    {"gso_info_from_vnet", py_gso_info_from_vnet, METH_VARARGS,
     "gso_info_from_vnet(hdr, pkt) -> GSOInfo: validates a kernel packet, corrects hdr_len."},
    {"segmented_size", py_segmented_size, METH_O, "segmented_size(packet) -> int: bytes all segments occupy."},
    {"segment", py_segment, METH_O, "segment(packet) -> list[memoryview]: segments in one fresh buffer."},
    {"segment_into", py_segment_into, METH_VARARGS,
     "segment_into(packet, out) -> list[memoryview]: segments in the reusable bytearray out."},
    {NULL, NULL, 0, NULL},
};

int tio_segment_init(PyObject *module)
{
    PyObject *gsoproto;
    if ((tio_MalformedPacket = tio_import_attr("tio_core.errors", "MalformedPacket")) == NULL ||
        (gsoinfo_type = tio_import_attr("tio_core.contract", "GSOInfo")) == NULL ||
        (no_gso = tio_import_attr("tio_core.contract", "NO_GSO")) == NULL ||
        (gsoproto = tio_import_attr("tio_core.contract", "GSOProto")) == NULL)
        return -1;
    if (!PyType_Check(gsoinfo_type) || !PyType_IsSubtype((PyTypeObject *)gsoinfo_type, &PyTuple_Type)) {
        Py_DECREF(gsoproto);
        PyErr_SetString(PyExc_TypeError, "tio_core.contract.GSOInfo must be a tuple subclass");
        return -1;
    }
    tio_proto_tcp = PyObject_GetAttrString(gsoproto, "TCP");
    tio_proto_udp = PyObject_GetAttrString(gsoproto, "UDP");
    Py_DECREF(gsoproto);
    if (tio_proto_tcp == NULL || tio_proto_udp == NULL)
        return -1;
    if ((proto_tcp_value = PyLong_AsLong(tio_proto_tcp)) == -1 || (proto_udp_value = PyLong_AsLong(tio_proto_udp)) == -1)
        return -1; /* GSOProto members are ints: an error is set */
    if ((str_data = PyUnicode_InternFromString("data")) == NULL ||
        (str_gso = PyUnicode_InternFromString("gso")) == NULL)
        return -1;
    if (PyModule_AddIntConstant(module, "MAX_SEGMENT_COUNT", MAX_SEGMENT_COUNT) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "MAX_SEGMENTED_SIZE", MAX_SEGMENTED_SIZE);
}
