/* Coalescing planner of tio_core._ckernels: the C twin of
 * tio_core.coalesce._pycoalesce.plan (read that module's docstring for the rules).
 *
 * coalesce_plan(packets, tcp, udp, verify, protos) parses every packet once,
 * verifies the checksums a merge depends on, builds the runs of same-flow segments, patches the
 * merged headers and slices the payloads, returning the list of writes:
 * original packet objects (write) and (ip_hdr, l4_hdr, payloads, proto)
 * tuples (write_gso). All per-packet work of a flush happens here, so the
 * Python side only loops over writes. Every length read from a packet is
 * checked against the buffer before use. */
#include "tio.h"
#include "csum.h"
#include "wire.h"

/* Runs are written with write_gso: at most what every kernel takes in one UDP
 * GSO write (used for TCP too). */
#define MAX_SEGMENTS TIO_UDP_GSO_MAX_SEGMENTS_OLD
#define TCP_MERGEABLE (TIO_TCP_ACK | TIO_TCP_PSH | TIO_TCP_ECE)
/* The first byte of an IPv4 header without options: version 4, IHL 5 words. */
#define IPV4_WITHOUT_OPTIONS (4 << 4 | TIO_IPV4_MIN_HDR / 4)

enum outcome { SEAL_ALL, VERBATIM, SEAL_FLOW, CANDIDATE };

typedef struct {
    uint8_t proto;
    uint8_t addr_len; /* both addresses: 8 (IPv4) or 32 (IPv6) */
    uint8_t ports[TIO_L4_PORTS_LEN];
    uint8_t addrs[2 * TIO_IPV6_ADDR_LEN];
} flow_key;

typedef struct {
    const uint8_t *p; /* packet bytes (buffer held for the whole call) */
    uint32_t seq;
    uint16_t l4off, l4hlen, plen;
    uint8_t proto, flags;
    int8_t verified; /* the L4 checksum's verdict: 1 ok, 0 bad, -1 not checked until a merge depends on it */
    Py_ssize_t next; /* next member of the same run, or -1 */
} candidate;

typedef struct {
    Py_ssize_t seed, tail; /* packet indices of first and last member */
    uint32_t next_seq, total, epoch;
    uint16_t gso_size, count;
    uint8_t closing_flags;
} run_t;

typedef struct {
    flow_key key;
    Py_ssize_t run; /* -1 when no run is open for the key */
    int used;
} slot_t;

/* What the IP header says, as parse_ip reads it. */
typedef struct {
    Py_ssize_t ip_len, l4off; /* where the IP packet and its header end */
    const uint8_t *addrs;     /* source and destination address, back to back */
    uint8_t proto, addr_len;
} ip_info;

/* Whether a candidate came in IPv4 (only IPv4 without options is one). */
static inline int is_ipv4(const candidate *c)
{
    return c->l4off == TIO_IPV4_MIN_HDR;
}

static inline int same_bytes(const uint8_t *a, const uint8_t *b, size_t from, size_t to)
{
    return memcmp(a + from, b + from, to - from) == 0;
}

static int is_ipv6_extension(uint8_t nh)
{
    switch (nh) {
    case TIO_IPPROTO_HOPOPTS:
    case TIO_IPPROTO_ROUTING:
    case TIO_IPPROTO_FRAGMENT:
    case TIO_IPPROTO_ESP:
    case TIO_IPPROTO_AH:
    case TIO_IPPROTO_DSTOPTS:
    case TIO_IPPROTO_MH:
    case TIO_IPPROTO_HIP:
    case TIO_IPPROTO_SHIM6:
    case TIO_IPPROTO_EXP1:
    case TIO_IPPROTO_EXP2:
        return 1;
    default:
        return 0;
    }
}

/* Folded pseudo-header sum: addresses, protocol, L4 length. */
static uint64_t pseudo_sum(const uint8_t *addrs, size_t addr_len, uint8_t proto, uint32_t l4_len)
{
    return tio_csum_add(0, addrs, addr_len) + proto + l4_len;
}

/* Reads the IP header of p[0..n) into *ip: 1 for a packet that can be tied
 * to a flow, 0 for one that seals every open run (twin of _parse_ip in _pycoalesce). */
static int parse_ip(const uint8_t *p, Py_ssize_t n, int verify, ip_info *ip)
{
    int version = n > 0 ? tio_ip_version(p) : 0;
    if (version == 4) {
        if (n < TIO_IPV4_MIN_HDR || p[0] != IPV4_WITHOUT_OPTIONS)
            return 0;
        ip->ip_len = tio_get16(p + TIO_IPV4_TOTAL_LENGTH);
        if (ip->ip_len < TIO_IPV4_MIN_HDR || ip->ip_len > n || (tio_get16(p + TIO_IPV4_FRAG) & ~TIO_IPV4_DF))
            return 0; /* a fragment (or a reserved bit) */
        if (verify && tio_csum_fold(tio_csum_add(0, p, TIO_IPV4_MIN_HDR)) != 0xFFFF)
            return 0;
        ip->l4off = TIO_IPV4_MIN_HDR;
        ip->proto = p[TIO_IPV4_PROTOCOL];
        ip->addrs = p + TIO_IPV4_SRC;
        ip->addr_len = 2 * TIO_IPV4_ADDR_LEN;
        return 1;
    }
    if (version == 6) {
        if (n < TIO_IPV6_HDR)
            return 0;
        ip->ip_len = TIO_IPV6_HDR + (Py_ssize_t)tio_get16(p + TIO_IPV6_PAYLOAD_LENGTH);
        if (ip->ip_len > n)
            return 0;
        ip->l4off = TIO_IPV6_HDR;
        ip->proto = p[TIO_IPV6_NEXT_HEADER];
        ip->addrs = p + TIO_IPV6_SRC;
        ip->addr_len = 2 * TIO_IPV6_ADDR_LEN;
        return !is_ipv6_extension(ip->proto);
    }
    return 0;
}

/* Classifies a TCP segment whose header is valid; fills c->flags and c->seq. */
static enum outcome classify_tcp(const uint8_t *l4, int tcp, candidate *c)
{
    if (!tcp)
        return SEAL_FLOW;
    uint8_t flags = l4[TIO_TCP_FLAGS];
    if ((l4[TIO_TCP_DATA_OFFSET] & TIO_TCP_RESERVED_MASK) || (flags & ~TCP_MERGEABLE) || !(flags & TIO_TCP_ACK))
        return SEAL_FLOW;
    if (c->plen == 0)
        return VERBATIM; /* a pure ACK leaves the run open */
    c->flags = flags;
    c->seq = tio_get32(l4 + TIO_TCP_SEQ);
    return CANDIDATE;
}

/* Classifies a UDP datagram whose header lies inside l4_len. */
static enum outcome classify_udp(const uint8_t *l4, Py_ssize_t l4_len, int udp, candidate *c)
{
    if (!udp)
        return SEAL_FLOW;
    /* a zero UDP checksum means "none": merging would add one */
    if (tio_get16(l4 + TIO_UDP_LENGTH) != l4_len || c->plen == 0 || tio_get16(l4 + TIO_UDP_CSUM_OFFSET) == 0)
        return SEAL_FLOW;
    c->flags = 0;
    c->seq = 0;
    return CANDIDATE;
}

/* Classifies one packet (twin of parse() in _pycoalesce). Fills key and c. */
static enum outcome parse(const uint8_t *p, Py_ssize_t n, int tcp, int udp, int verify, flow_key *key,
                          candidate *c)
{
    ip_info ip;
    if (!parse_ip(p, n, verify, &ip))
        return SEAL_ALL;
    if (ip.proto != TIO_IPPROTO_TCP && ip.proto != TIO_IPPROTO_UDP)
        return VERBATIM;
    const int is_tcp = ip.proto == TIO_IPPROTO_TCP;
    const Py_ssize_t l4_len = ip.ip_len - ip.l4off;
    const uint8_t *l4 = p + ip.l4off;
    if (l4_len < (is_tcp ? TIO_TCP_MIN_HDR : TIO_UDP_HDR))
        return SEAL_ALL;
    const Py_ssize_t l4hlen = is_tcp ? (Py_ssize_t)tio_tcp_hdr_len(l4) : TIO_UDP_HDR;
    if ((is_tcp && l4hlen < TIO_TCP_MIN_HDR) || l4hlen > l4_len)
        return SEAL_ALL;

    memset(key, 0, sizeof(*key));
    key->proto = ip.proto;
    key->addr_len = ip.addr_len;
    memcpy(key->addrs, ip.addrs, ip.addr_len);
    memcpy(key->ports, l4, TIO_L4_PORTS_LEN);

    c->p = p;
    c->proto = ip.proto;
    c->l4off = (uint16_t)ip.l4off;
    c->l4hlen = (uint16_t)l4hlen;
    c->plen = (uint16_t)(l4_len - l4hlen);
    c->next = -1;
    c->verified = verify ? -1 : 1;
    return is_tcp ? classify_tcp(l4, tcp, c) : classify_udp(l4, l4_len, udp, c);
}

/* Whether c's L4 checksum verifies; computed once, when a merge first depends on it
 * (twin of _checksum_ok). */
static int checksum_ok(candidate *c)
{
    if (c->verified < 0) {
        const uint8_t *addrs = c->p + (is_ipv4(c) ? TIO_IPV4_SRC : TIO_IPV6_SRC);
        const size_t addr_len = 2 * (is_ipv4(c) ? TIO_IPV4_ADDR_LEN : TIO_IPV6_ADDR_LEN);
        const uint32_t l4_len = (uint32_t)c->l4hlen + c->plen;
        uint64_t acc = pseudo_sum(addrs, addr_len, c->proto, l4_len);
        c->verified = tio_csum_fold(tio_csum_add(acc, c->p + c->l4off, l4_len)) == 0xFFFF;
    }
    return c->verified;
}

/* Whether c can be the next segment of run r (same flow already known):
 * every field the kernel copies into each segment when it resegments is equal. */
static int joins(const run_t *r, const candidate *seed, const candidate *c)
{
    if (c->l4hlen != seed->l4hlen || c->plen > r->gso_size || r->count >= MAX_SEGMENTS ||
        (uint32_t)seed->l4off + seed->l4hlen + r->total + c->plen > TIO_MAX_IP_PACKET)
        return 0;
    const uint8_t *a = c->p, *b = seed->p;
    if (is_ipv4(seed)) {
        /* TOS, flags/DF, TTL equal; without DF the ID must count up from the seed's */
        if (a[TIO_IPV4_TOS] != b[TIO_IPV4_TOS] || !same_bytes(a, b, TIO_IPV4_FRAG, TIO_IPV4_TTL) ||
            a[TIO_IPV4_TTL] != b[TIO_IPV4_TTL])
            return 0;
        if (!(tio_get16(b + TIO_IPV4_FRAG) & TIO_IPV4_DF) &&
            tio_get16(a + TIO_IPV4_ID) != (uint16_t)(tio_get16(b + TIO_IPV4_ID) + r->count))
            return 0;
    } else if (!same_bytes(a, b, 0, TIO_IPV6_PAYLOAD_LENGTH) || a[TIO_IPV6_HOP_LIMIT] != b[TIO_IPV6_HOP_LIMIT]) {
        return 0; /* traffic class, flow label, hop limit */
    }
    if (seed->proto == TIO_IPPROTO_TCP) {
        const uint8_t *ta = a + seed->l4off, *tb = b + seed->l4off;
        if (c->seq != r->next_seq || (c->flags & ~TIO_TCP_PSH) != seed->flags ||
            !same_bytes(ta, tb, TIO_TCP_ACK_SEQ, TIO_TCP_FLAGS) ||        /* ack, data offset */
            !same_bytes(ta, tb, TIO_TCP_WINDOW, TIO_TCP_CSUM_OFFSET) ||   /* window */
            !same_bytes(ta, tb, TIO_TCP_URG_PTR, seed->l4hlen))          /* urgent pointer, options */
            return 0;
    }
    return 1;
}

static uint64_t key_hash(const flow_key *k)
{
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *p = (const uint8_t *)k;
    for (size_t i = 0; i < sizeof(*k); i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* The slot for key: an existing one, or a fresh one claimed for it. */
static slot_t *lookup(slot_t *table, size_t mask, const flow_key *key)
{
    size_t i = (size_t)key_hash(key) & mask;
    while (table[i].used && memcmp(&table[i].key, key, sizeof(*key)) != 0)
        i = (i + 1) & mask;
    if (!table[i].used) {
        table[i].used = 1;
        table[i].key = *key;
        table[i].run = -1;
    }
    return &table[i];
}

/* Whether a memoryview is 1-D, unsigned bytes, stride 1. */
static int is_byte_view(PyObject *view)
{
    Py_buffer *b = PyMemoryView_GET_BUFFER(view);
    return b->ndim == 1 && (b->format == NULL || strcmp(b->format, "B") == 0) &&
           (b->strides == NULL || b->strides[0] == 1);
}

/* A 1-D unsigned-byte memoryview of obj (whose buffer is known contiguous). */
static PyObject *byte_view(PyObject *obj)
{
    PyObject *view = PyMemoryView_FromObject(obj);
    if (view == NULL)
        return NULL;
    if (is_byte_view(view))
        return view;
    PyObject *cast = PyObject_CallMethod(view, "cast", "s", "B");
    Py_DECREF(view);
    return cast;
}

/* A memoryview of obj[start:start+len] sharing obj's memory (no copy). */
static PyObject *payload_view(PyObject *obj, Py_ssize_t start, Py_ssize_t len)
{
    PyObject *view = PyMemoryView_FromObject(obj);
    if (view == NULL)
        return NULL;
    if (is_byte_view(view) && PyMemoryView_GET_BUFFER(view)->len >= start + len)
        return tio_narrowed_view(view, start, len); /* fresh: saves one object per payload */
    Py_DECREF(view);
    view = byte_view(obj); /* another item format: cast to bytes, then slice */
    if (view == NULL)
        return NULL;
    PyObject *slice = PySequence_GetSlice(view, start, start + len);
    Py_DECREF(view);
    return slice;
}

static PyObject *bytes_from(const uint8_t *p, size_t n)
{
    return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
}

/* The write_gso argument tuple for a run of two or more members. */
static PyObject *emit_run(const run_t *r, const candidate *cands, PyObject *const *objs, PyObject *protos)
{
    const candidate *seed = &cands[r->seed];
    const uint8_t *p = seed->p;
    const size_t l4off = seed->l4off, l4hlen = seed->l4hlen;
    const uint32_t l4_total = (uint32_t)l4hlen + r->total;
    const int tcp = seed->proto == TIO_IPPROTO_TCP;
    PyObject *ip_hdr = NULL, *l4_hdr = NULL, *payloads = NULL, *result = NULL;

    ip_hdr = bytes_from(p, l4off);
    l4_hdr = bytes_from(p + l4off, l4hlen);
    payloads = PyList_New(r->count);
    if (ip_hdr == NULL || l4_hdr == NULL || payloads == NULL)
        goto done;
    /* fresh bytes objects, not yet shared: patch them in place */
    uint8_t *ip = (uint8_t *)PyBytes_AS_STRING(ip_hdr);
    uint8_t *l4 = (uint8_t *)PyBytes_AS_STRING(l4_hdr);
    const uint8_t *addrs;
    size_t addr_len;
    if (is_ipv4(seed)) {
        addrs = p + TIO_IPV4_SRC;
        addr_len = 2 * TIO_IPV4_ADDR_LEN;
        tio_put16(ip + TIO_IPV4_TOTAL_LENGTH, (uint16_t)(l4off + l4_total));
        tio_put16(ip + TIO_IPV4_CHECKSUM, 0);
        tio_put16(ip + TIO_IPV4_CHECKSUM, (uint16_t)~tio_csum_fold(tio_csum_add(0, ip, TIO_IPV4_MIN_HDR)));
    } else {
        addrs = p + TIO_IPV6_SRC;
        addr_len = 2 * TIO_IPV6_ADDR_LEN;
        tio_put16(ip + TIO_IPV6_PAYLOAD_LENGTH, (uint16_t)l4_total);
    }
    if (tcp)
        l4[TIO_TCP_FLAGS] |= r->closing_flags;
    else
        tio_put16(l4 + TIO_UDP_LENGTH, (uint16_t)l4_total);
    /* the partial checksum write_gso's NEEDS_CSUM header asks for: the folded pseudo-header sum */
    tio_put16(l4 + (tcp ? TIO_TCP_CSUM_OFFSET : TIO_UDP_CSUM_OFFSET),
              tio_csum_fold(pseudo_sum(addrs, addr_len, seed->proto, l4_total)));

    Py_ssize_t start = (Py_ssize_t)(l4off + l4hlen), k = 0;
    for (Py_ssize_t i = r->seed; i >= 0; i = cands[i].next, k++) {
        PyObject *slice = payload_view(objs[i], start, cands[i].plen);
        if (slice == NULL)
            goto done;
        PyList_SET_ITEM(payloads, k, slice);
    }
    PyObject *proto = PyTuple_GET_ITEM(protos, tcp ? 0 : 1);
    result = PyTuple_Pack(4, ip_hdr, l4_hdr, payloads, proto);
done:
    Py_XDECREF(ip_hdr);
    Py_XDECREF(l4_hdr);
    Py_XDECREF(payloads);
    return result;
}

/* The state of one coalesce_plan call: an entry per packet, the runs and the
 * open-run table keyed by flow. */
typedef struct {
    Py_ssize_t n;
    PyObject **objs; /* the packets (a snapshot list owned by the caller) */
    Py_buffer *bufs;
    Py_ssize_t held; /* bufs[0..held) are acquired */
    candidate *cands;
    run_t *runs;
    Py_ssize_t n_runs;
    Py_ssize_t *items; /* the writes in output order: i >= 0 packet i, ~r run r */
    Py_ssize_t n_items;
    slot_t *table;
    size_t mask; /* table size - 1, the size a power of two at least twice n */
} planner;

static void planner_free(planner *pl)
{
    for (Py_ssize_t i = 0; i < pl->held; i++)
        PyBuffer_Release(&pl->bufs[i]);
    PyMem_Free(pl->bufs);
    PyMem_Free(pl->cands);
    PyMem_Free(pl->runs);
    PyMem_Free(pl->items);
    PyMem_Free(pl->table);
}

/* Allocates the state for the packets of list seq and acquires their buffers;
 * 0, or -1 with an error (call planner_free either way). */
static int planner_init(planner *pl, PyObject *seq)
{
    memset(pl, 0, sizeof(*pl));
    pl->n = PyList_GET_SIZE(seq);
    pl->objs = PySequence_Fast_ITEMS(seq);
    size_t n = pl->n ? (size_t)pl->n : 1, cap = 16;
    while (cap < (size_t)pl->n * 2)
        cap <<= 1;
    pl->mask = cap - 1;
    pl->bufs = PyMem_Calloc(n, sizeof(Py_buffer));
    pl->cands = PyMem_Calloc(n, sizeof(candidate));
    pl->runs = PyMem_Calloc(n, sizeof(run_t));
    pl->items = PyMem_Calloc(n, sizeof(Py_ssize_t));
    pl->table = PyMem_Calloc(cap, sizeof(slot_t));
    if (!pl->bufs || !pl->cands || !pl->runs || !pl->items || !pl->table) {
        PyErr_NoMemory();
        return -1;
    }
    for (; pl->held < pl->n; pl->held++)
        if (PyObject_GetBuffer(pl->objs[pl->held], &pl->bufs[pl->held], PyBUF_SIMPLE) < 0)
            return -1;
    return 0;
}

/* Opens a run seeded by candidate i for the flow of slot; returns it. */
static run_t *start_run(planner *pl, slot_t *slot, Py_ssize_t i, uint32_t epoch)
{
    const candidate *c = &pl->cands[i];
    run_t *r = &pl->runs[pl->n_runs];
    r->seed = r->tail = i;
    r->count = 1;
    r->gso_size = c->plen;
    r->total = c->plen;
    r->next_seq = c->seq + c->plen;
    r->closing_flags = c->flags & TIO_TCP_PSH;
    r->epoch = epoch;
    slot->run = pl->n_runs;
    pl->items[pl->n_items++] = ~pl->n_runs;
    pl->n_runs++;
    return r;
}

/* Appends candidate i to run r. */
static void extend_run(planner *pl, run_t *r, Py_ssize_t i)
{
    const candidate *c = &pl->cands[i];
    pl->cands[r->tail].next = i;
    r->tail = i;
    r->count++;
    r->total += c->plen;
    r->next_seq = c->seq + c->plen;
    r->closing_flags = c->flags & TIO_TCP_PSH;
}

/* Parses every packet and groups the candidates into runs, in packet order. */
static void build_runs(planner *pl, int tcp, int udp, int verify)
{
    uint32_t epoch = 0; /* runs of an older epoch count as sealed */
    for (Py_ssize_t i = 0; i < pl->n; i++) {
        flow_key key;
        candidate *c = &pl->cands[i];
        enum outcome oc = parse(pl->bufs[i].buf, pl->bufs[i].len, tcp, udp, verify, &key, c);
        if (oc != CANDIDATE) {
            if (oc == SEAL_ALL)
                epoch++;
            else if (oc == SEAL_FLOW)
                lookup(pl->table, pl->mask, &key)->run = -1;
            pl->items[pl->n_items++] = i;
            continue;
        }
        slot_t *slot = lookup(pl->table, pl->mask, &key);
        run_t *r = slot->run >= 0 ? &pl->runs[slot->run] : NULL;
        /* Checksums are verified only where a merge depends on them (a packet written as it is
         * keeps its own): a seed that fails stays a run of one, written as it is; a joiner
         * that fails is written as it is and ends its flow's run. */
        if (r != NULL &&
            (r->epoch != epoch || !joins(r, &pl->cands[r->seed], c) || !checksum_ok(&pl->cands[r->seed])))
            r = NULL;
        if (r != NULL && !checksum_ok(c)) {
            slot->run = -1;
            pl->items[pl->n_items++] = i;
            continue;
        }
        if (r != NULL)
            extend_run(pl, r, i);
        else
            r = start_run(pl, slot, i, epoch);
        if (c->plen < r->gso_size || (c->flags & TIO_TCP_PSH))
            slot->run = -1; /* a shorter segment or PSH closes the run */
    }
}

/* The list of writes: packet objects, and write_gso tuples for runs of two or more. */
static PyObject *emit_items(const planner *pl, PyObject *protos)
{
    PyObject *out = PyList_New(pl->n_items);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < pl->n_items; k++) {
        PyObject *item;
        if (pl->items[k] >= 0) {
            item = Py_NewRef(pl->objs[pl->items[k]]);
        } else {
            const run_t *r = &pl->runs[~pl->items[k]];
            if (r->count == 1)
                item = Py_NewRef(pl->objs[r->seed]);
            else if ((item = emit_run(r, pl->cands, pl->objs, protos)) == NULL) {
                Py_DECREF(out);
                return NULL;
            }
        }
        PyList_SET_ITEM(out, k, item);
    }
    return out;
}

static PyObject *coalesce_plan(PyObject *self, PyObject *args)
{
    PyObject *packets, *protos;
    int tcp, udp, verify;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!pppO!:coalesce_plan", &PyList_Type, &packets, &tcp, &udp, &verify,
                          &PyTuple_Type, &protos))
        return NULL;
    if (PyTuple_GET_SIZE(protos) != 2) {
        PyErr_SetString(PyExc_ValueError, "protos must be a (tcp, udp) pair");
        return NULL;
    }
    /* Own a snapshot of the list so nothing can change under us. */
    PyObject *seq = PyList_GetSlice(packets, 0, PyList_GET_SIZE(packets));
    if (seq == NULL)
        return NULL;
    planner pl;
    PyObject *out = NULL;
    if (planner_init(&pl, seq) == 0) {
        build_runs(&pl, tcp, udp, verify);
        out = emit_items(&pl, protos);
    }
    planner_free(&pl);
    Py_DECREF(seq);
    return out;
}

/* Raises TypeError naming the first item that is not a C-contiguous buffer. */
static PyObject *coalesce_check_buffers(PyObject *self, PyObject *arg)
{
    (void)self;
    PyObject *seq = PySequence_Fast(arg, "packets must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **objs = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = objs[i];
        if (PyBytes_CheckExact(o) || PyByteArray_CheckExact(o))
            continue;
        Py_buffer b;
        if (!PyObject_CheckBuffer(o)) {
            PyErr_Format(PyExc_TypeError, "packet %zd is a %.100s, not a bytes-like object", i, Py_TYPE(o)->tp_name);
            Py_DECREF(seq);
            return NULL;
        }
        if (PyObject_GetBuffer(o, &b, PyBUF_SIMPLE) < 0) {
            /* e.g. a strided or released memoryview: say which packet and why */
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_Format(PyExc_TypeError, "packet %zd is not a readable C-contiguous buffer (%S)", i,
                         value ? value : Py_None);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            Py_DECREF(seq);
            return NULL;
        }
        PyBuffer_Release(&b);
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

PyMethodDef tio_coalesce_methods[] = {
    {"coalesce_plan", coalesce_plan, METH_VARARGS,
     "coalesce_plan(packets: list, tcp, udp, verify, protos: tuple) -> list of writes\n"
     "C twin of tio_core.coalesce._pycoalesce.plan."},
    {"coalesce_check_buffers", coalesce_check_buffers, METH_O,
     "coalesce_check_buffers(packets) -> None; TypeError for a non-contiguous or non-buffer item."},
    {NULL, NULL, 0, NULL},
};
