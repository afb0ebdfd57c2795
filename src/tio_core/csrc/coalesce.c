/* Coalescing planner of tio_core._ckernels: the C twin of
 * tio_core._pycoalesce.plan (read that module's docstring for the rules).
 *
 * coalesce_plan(packets, tcp, udp, verify, protos) parses every packet once,
 * verifies checksums, builds the runs of same-flow segments, patches the
 * merged headers and slices the payloads, returning the list of writes:
 * original packet objects (write) and (ip_hdr, l4_hdr, payloads, proto)
 * tuples (write_gso). All per-packet work of a flush happens here, so the
 * Python side only loops over writes. Every length read from a packet is
 * checked against the buffer before use. */
#include "tio.h"
#include "csum.h"
#include "wire.h"

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define MAX_SEGMENTS TIO_UDP_GSO_MAX_SEGMENTS_OLD /* what every kernel takes in one UDP GSO write */
#define MAX_IP_PACKET 65535
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_MERGEABLE (0x10 | 0x08 | 0x40) /* ACK, PSH, ECE */
#define IPV4_DF 0x4000

enum outcome { SEAL_ALL, VERBATIM, SEAL_FLOW, CANDIDATE };

typedef struct {
    uint8_t proto;
    uint8_t addr_len; /* 8 (IPv4) or 32 (IPv6) */
    uint8_t ports[4];
    uint8_t addrs[32];
} flow_key;

typedef struct {
    const uint8_t *p; /* packet bytes (buffer held for the whole call) */
    uint32_t seq;
    uint16_t l4off, l4hlen, plen;
    uint8_t proto, flags;
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

static uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static int is_ipv6_extension(uint8_t nh)
{
    switch (nh) {
    case 0: case 43: case 44: case 50: case 51: case 60: case 135: case 139: case 140: case 253: case 254:
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

/* Classifies one packet (see parse() in _pycoalesce). Fills key and c. */
static enum outcome parse(const uint8_t *p, Py_ssize_t n, int tcp, int udp, int verify,
                          flow_key *key, candidate *c)
{
    Py_ssize_t ip_len, l4off;
    const uint8_t *addrs;
    uint8_t proto, addr_len;
    int version = n > 0 ? p[0] >> 4 : 0;

    if (version == 4) {
        if (n < 20 || p[0] != 0x45)
            return SEAL_ALL;
        ip_len = be16(p + 2);
        if (ip_len < 20 || ip_len > n || (be16(p + 6) & ~IPV4_DF))
            return SEAL_ALL;
        if (verify && tio_csum_fold(tio_csum_add(0, p, 20)) != 0xFFFF)
            return SEAL_ALL;
        l4off = 20;
        proto = p[9];
        addrs = p + 12;
        addr_len = 8;
    } else if (version == 6) {
        if (n < 40)
            return SEAL_ALL;
        ip_len = 40 + (Py_ssize_t)be16(p + 4);
        if (ip_len > n)
            return SEAL_ALL;
        l4off = 40;
        proto = p[6];
        addrs = p + 8;
        addr_len = 32;
        if (is_ipv6_extension(proto))
            return SEAL_ALL;
    } else {
        return SEAL_ALL;
    }

    Py_ssize_t l4_len = ip_len - l4off;
    const uint8_t *l4 = p + l4off;
    if (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_)
        return VERBATIM;
    if (l4_len < (proto == IPPROTO_TCP_ ? 20 : 8))
        return SEAL_ALL;
    Py_ssize_t l4hlen = proto == IPPROTO_TCP_ ? (l4[12] >> 4) * 4 : 8;
    if (l4hlen < 20 && proto == IPPROTO_TCP_)
        return SEAL_ALL;
    if (l4hlen > l4_len)
        return SEAL_ALL;

    memset(key, 0, sizeof(*key));
    key->proto = proto;
    key->addr_len = addr_len;
    memcpy(key->addrs, addrs, addr_len);
    memcpy(key->ports, l4, 4);

    Py_ssize_t plen = l4_len - l4hlen;
    c->p = p;
    c->proto = proto;
    c->l4off = (uint16_t)l4off;
    c->l4hlen = (uint16_t)l4hlen;
    c->plen = (uint16_t)plen;
    c->next = -1;
    if (proto == IPPROTO_TCP_) {
        if (!tcp)
            return SEAL_FLOW;
        uint8_t flags = l4[13];
        if ((l4[12] & 0x0F) || (flags & ~TCP_MERGEABLE) || !(flags & TCP_ACK))
            return SEAL_FLOW;
        if (plen == 0)
            return VERBATIM; /* a pure ACK leaves the run open */
        c->flags = flags;
        c->seq = be32(l4 + 4);
    } else {
        if (!udp)
            return SEAL_FLOW;
        /* a zero UDP checksum means "none": merging would add one */
        if (be16(l4 + 4) != l4_len || plen == 0 || be16(l4 + 6) == 0)
            return SEAL_FLOW;
        c->flags = 0;
        c->seq = 0;
    }
    if (verify) {
        uint64_t acc = pseudo_sum(addrs, addr_len, proto, (uint32_t)l4_len);
        if (tio_csum_fold(tio_csum_add(acc, l4, (size_t)l4_len)) != 0xFFFF)
            return SEAL_FLOW;
    }
    return CANDIDATE;
}

/* Whether c can be the next segment of run r (same flow already known). */
static int joins(const run_t *r, const candidate *seed, const candidate *c)
{
    if (c->l4hlen != seed->l4hlen || c->plen > r->gso_size || r->count >= MAX_SEGMENTS ||
        (uint32_t)seed->l4off + seed->l4hlen + r->total + c->plen > MAX_IP_PACKET)
        return 0;
    const uint8_t *a = c->p, *b = seed->p;
    if (seed->l4off == 20) {
        /* TOS, flags/DF, TTL equal; without DF the ID must count up from the seed's */
        if (a[1] != b[1] || a[6] != b[6] || a[7] != b[7] || a[8] != b[8])
            return 0;
        if (!(b[6] & 0x40) && be16(a + 4) != (uint16_t)(be16(b + 4) + r->count))
            return 0;
    } else if (memcmp(a, b, 4) != 0 || a[7] != b[7]) { /* class, flow label, hop limit */
        return 0;
    }
    if (seed->proto == IPPROTO_TCP_) {
        size_t o = seed->l4off, h = seed->l4hlen;
        if (c->seq != r->next_seq || (c->flags & ~TCP_PSH) != seed->flags ||
            memcmp(a + o + 8, b + o + 8, 5) != 0 ||     /* ack, data offset */
            memcmp(a + o + 14, b + o + 14, 2) != 0 ||   /* window */
            memcmp(a + o + 18, b + o + 18, h - 18) != 0) /* urgent pointer, options */
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
    Py_buffer *b = PyMemoryView_GET_BUFFER(view);
    if (is_byte_view(view) && b->len >= start + len) {
        /* A fresh view that nobody else has seen yet can be narrowed in place,
         * exactly as memoryview slicing does (1-D, stride 1, so it stays
         * contiguous), saving one object per payload. */
        b->buf = (char *)b->buf + start;
        b->len = len;
        b->shape[0] = len;
        return view;
    }
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
    size_t l4off = seed->l4off, l4hlen = seed->l4hlen;
    uint32_t l4_total = (uint32_t)l4hlen + r->total;
    PyObject *ip_hdr = NULL, *l4_hdr = NULL, *payloads = NULL, *result = NULL;

    ip_hdr = bytes_from(p, l4off);
    l4_hdr = bytes_from(p + l4off, l4hlen);
    payloads = PyList_New(r->count);
    if (ip_hdr == NULL || l4_hdr == NULL || payloads == NULL)
        goto done;
    /* fresh bytes objects, not yet shared: patch them in place */
    uint8_t *ip = (uint8_t *)PyBytes_AS_STRING(ip_hdr);
    uint8_t *l4 = (uint8_t *)PyBytes_AS_STRING(l4_hdr);
    const uint8_t *addrs = l4off == 20 ? p + 12 : p + 8;
    size_t addr_len = l4off == 20 ? 8 : 32;
    if (l4off == 20) {
        put16(ip + 2, (uint16_t)(l4off + l4_total));
        put16(ip + 10, 0);
        put16(ip + 10, (uint16_t)~tio_csum_fold(tio_csum_add(0, ip, 20)));
    } else {
        put16(ip + 4, (uint16_t)l4_total);
    }
    size_t csum_at = 6;
    if (seed->proto == IPPROTO_TCP_) {
        l4[13] |= r->closing_flags;
        csum_at = 16;
    } else {
        put16(l4 + 4, (uint16_t)l4_total);
    }
    put16(l4 + csum_at, tio_csum_fold(pseudo_sum(addrs, addr_len, seed->proto, l4_total)));

    Py_ssize_t start = (Py_ssize_t)(l4off + l4hlen), k = 0;
    for (Py_ssize_t i = r->seed; i >= 0; i = cands[i].next, k++) {
        PyObject *slice = payload_view(objs[i], start, cands[i].plen);
        if (slice == NULL)
            goto done;
        PyList_SET_ITEM(payloads, k, slice);
    }
    PyObject *proto = PyTuple_GET_ITEM(protos, seed->proto == IPPROTO_TCP_ ? 0 : 1);
    result = PyTuple_Pack(4, ip_hdr, l4_hdr, payloads, proto);
done:
    Py_XDECREF(ip_hdr);
    Py_XDECREF(l4_hdr);
    Py_XDECREF(payloads);
    return result;
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
    Py_ssize_t n = PyList_GET_SIZE(seq);
    PyObject **objs = PySequence_Fast_ITEMS(seq);

    size_t cap = 16;
    while (cap < (size_t)n * 2)
        cap <<= 1;
    Py_buffer *bufs = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_buffer));
    candidate *cands = PyMem_Calloc(n ? (size_t)n : 1, sizeof(candidate));
    run_t *runs = PyMem_Calloc(n ? (size_t)n : 1, sizeof(run_t));
    Py_ssize_t *items = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_ssize_t)); /* i >= 0 packet, ~r run */
    slot_t *table = PyMem_Calloc(cap, sizeof(slot_t));
    PyObject *out = NULL;
    Py_ssize_t held = 0, n_items = 0, n_runs = 0;
    uint32_t epoch = 0;
    if (!bufs || !cands || !runs || !items || !table) {
        PyErr_NoMemory();
        goto done;
    }
    for (; held < n; held++)
        if (PyObject_GetBuffer(objs[held], &bufs[held], PyBUF_SIMPLE) < 0)
            goto done;

    for (Py_ssize_t i = 0; i < n; i++) {
        flow_key key;
        candidate *c = &cands[i];
        enum outcome oc = parse(bufs[i].buf, bufs[i].len, tcp, udp, verify, &key, c);
        if (oc != CANDIDATE) {
            if (oc == SEAL_ALL)
                epoch++; /* runs of an older epoch count as sealed */
            else if (oc == SEAL_FLOW)
                lookup(table, cap - 1, &key)->run = -1;
            items[n_items++] = i;
            continue;
        }
        slot_t *slot = lookup(table, cap - 1, &key);
        run_t *r = slot->run >= 0 ? &runs[slot->run] : NULL;
        if (r != NULL && r->epoch == epoch && joins(r, &cands[r->seed], c)) {
            cands[r->tail].next = i;
            r->tail = i;
            r->count++;
            r->total += c->plen;
            r->next_seq = c->seq + c->plen;
            r->closing_flags = c->flags & TCP_PSH;
        } else {
            r = &runs[n_runs];
            r->seed = r->tail = i;
            r->count = 1;
            r->gso_size = c->plen;
            r->total = c->plen;
            r->next_seq = c->seq + c->plen;
            r->closing_flags = c->flags & TCP_PSH;
            r->epoch = epoch;
            slot->run = n_runs;
            items[n_items++] = ~n_runs;
            n_runs++;
        }
        if (c->plen < r->gso_size || (c->flags & TCP_PSH))
            slot->run = -1;
    }

    out = PyList_New(n_items);
    if (out == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < n_items; k++) {
        PyObject *item;
        if (items[k] >= 0) {
            item = objs[items[k]];
            Py_INCREF(item);
        } else {
            const run_t *r = &runs[~items[k]];
            if (r->count == 1) {
                item = objs[r->seed];
                Py_INCREF(item);
            } else if ((item = emit_run(r, cands, objs, protos)) == NULL) {
                Py_CLEAR(out);
                goto done;
            }
        }
        PyList_SET_ITEM(out, k, item);
    }
done:
    for (Py_ssize_t i = 0; i < held; i++)
        PyBuffer_Release(&bufs[i]);
    PyMem_Free(bufs);
    PyMem_Free(cands);
    PyMem_Free(runs);
    PyMem_Free(items);
    PyMem_Free(table);
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
     "C twin of tio_core._pycoalesce.plan."},
    {"coalesce_check_buffers", coalesce_check_buffers, METH_O,
     "coalesce_check_buffers(packets) -> None; TypeError for a non-contiguous or non-buffer item."},
    {NULL, NULL, 0, NULL},
};

int tio_coalesce_init(PyObject *module)
{
    (void)module;
    return 0;
}
