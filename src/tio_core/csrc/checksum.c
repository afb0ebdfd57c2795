/* Checksum kernels of tio_core._ckernels: twins of the checksum functions in
 * tio_core.kernels._pykernels (same results, same exceptions and messages). */
#include "tio.h"
#include "csum.h"
#include "wire.h"

#include <limits.h>

int tio_as_ll(PyObject *obj, long long *out)
{
    /* plain ints (the common case) skip the __index__ call */
    PyObject *number = PyLong_CheckExact(obj) ? Py_NewRef(obj) : PyNumber_Index(obj);
    if (number == NULL)
        return -1;
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(number, &overflow);
    Py_DECREF(number);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (overflow)
        value = overflow > 0 ? LLONG_MAX : LLONG_MIN;
    *out = value;
    return 0;
}

static const char *const vnet_names[TIO_VNET_NFIELDS] = {
    "flags", "gso_type", "hdr_len", "gso_size", "csum_start", "csum_offset"};
static const long vnet_limits[TIO_VNET_NFIELDS] = {UINT8_MAX,  UINT8_MAX,  UINT16_MAX,
                                                   UINT16_MAX, UINT16_MAX, UINT16_MAX};

int tio_vnet_fields(PyObject *hdr, long fields[TIO_VNET_NFIELDS])
{
    /* a VirtioNetHdr is a tuple already: no copy needed */
    PyObject *seq = PyTuple_Check(hdr) ? Py_NewRef(hdr) : PySequence_Tuple(hdr);
    if (seq == NULL)
        return -1;
    if (PyTuple_GET_SIZE(seq) != TIO_VNET_NFIELDS) {
        PyErr_Format(PyExc_TypeError, "virtio_net_hdr must have 6 fields, got %zd", PyTuple_GET_SIZE(seq));
        goto fail;
    }
    long long values[TIO_VNET_NFIELDS];
    for (int i = 0; i < TIO_VNET_NFIELDS; i++)
        if (tio_as_ll(PyTuple_GET_ITEM(seq, i), &values[i]) < 0)
            goto fail;
    for (int i = 0; i < TIO_VNET_NFIELDS; i++) {
        if (values[i] < 0 || values[i] > vnet_limits[i]) {
            PyObject *number = PyNumber_Index(PyTuple_GET_ITEM(seq, i));
            if (number != NULL) {
                PyErr_Format(tio_MalformedPacket, "virtio_net_hdr %s %S is out of range 0..%ld", vnet_names[i],
                             number, vnet_limits[i]);
                Py_DECREF(number);
            }
            goto fail;
        }
        fields[i] = (long)values[i];
    }
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
}

static PyObject *py_checksum(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kwlist[] = {"data", "seed", NULL};
    Py_buffer data;
    PyObject *seed_obj = NULL;
    long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|O:checksum", kwlist, &data, &seed_obj))
        return NULL;
    if (seed_obj != NULL && tio_as_ll(seed_obj, &seed) < 0)
        goto fail;
    if (seed < 0 || seed > (long long)UINT32_MAX) {
        PyObject *number = PyNumber_Index(seed_obj);
        if (number != NULL) {
            PyErr_Format(PyExc_ValueError, "checksum seed must be 0..0xFFFFFFFF, got %S", number);
            Py_DECREF(number);
        }
        goto fail;
    }
    uint16_t sum = tio_csum_fold(tio_csum_add((uint64_t)seed, data.buf, (size_t)data.len));
    PyBuffer_Release(&data);
    return PyLong_FromLong(sum);
fail:
    PyBuffer_Release(&data);
    return NULL;
}

static PyObject *py_pseudo_header_sum(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer src, dst;
    PyObject *proto_obj, *len_obj;
    long long proto, l4_len;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*OO:pseudo_header_sum", &src, &dst, &proto_obj, &len_obj))
        return NULL;
    const int v4 = src.len == TIO_IPV4_ADDR_LEN;
    if (src.len != dst.len || (!v4 && src.len != TIO_IPV6_ADDR_LEN)) {
        PyErr_Format(PyExc_ValueError, "addresses must both be 4 or 16 bytes, got %zd and %zd", src.len, dst.len);
        goto done;
    }
    if (tio_as_ll(proto_obj, &proto) < 0 || tio_as_ll(len_obj, &l4_len) < 0)
        goto done;
    if (proto < 0 || proto > UINT8_MAX) {
        PyObject *number = PyNumber_Index(proto_obj);
        if (number != NULL) {
            PyErr_Format(PyExc_ValueError, "protocol number must be 0..255, got %S", number);
            Py_DECREF(number);
        }
        goto done;
    }
    long long max_len = v4 ? (long long)UINT16_MAX : (long long)UINT32_MAX; /* IPv6 sums a 32-bit length */
    if (l4_len < 0 || l4_len > max_len) {
        PyObject *number = PyNumber_Index(len_obj);
        if (number != NULL) {
            PyErr_Format(PyExc_ValueError, "L4 length %S does not fit the IPv%d pseudo-header", number,
                         v4 ? 4 : 6);
            Py_DECREF(number);
        }
        goto done;
    }
    uint64_t acc = tio_csum_add(0, src.buf, (size_t)src.len);
    acc = tio_csum_add(acc, dst.buf, (size_t)dst.len);
    acc += (uint64_t)proto + ((uint64_t)l4_len >> 16) + ((uint64_t)l4_len & 0xFFFF);
    result = PyLong_FromLong(tio_csum_fold(acc));
done:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

static PyObject *py_ipv4_header_checksum(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer hdr;
    if (PyObject_GetBuffer(arg, &hdr, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *p = hdr.buf;
    PyObject *result = NULL;
    if (hdr.len < TIO_IPV4_MIN_HDR) {
        PyErr_Format(tio_MalformedPacket, "IPv4 header of %zd bytes is shorter than %d", hdr.len, TIO_IPV4_MIN_HDR);
        goto done;
    }
    if (tio_ip_version(p) != 4) {
        PyErr_Format(tio_MalformedPacket, "IP version %d in an IPv4 header", tio_ip_version(p));
        goto done;
    }
    Py_ssize_t ihl_bytes = (Py_ssize_t)tio_ipv4_hdr_len(p);
    if (ihl_bytes < TIO_IPV4_MIN_HDR) {
        PyErr_Format(tio_MalformedPacket, "IPv4 header length %zd is below %d", ihl_bytes, TIO_IPV4_MIN_HDR);
        goto done;
    }
    if (ihl_bytes > hdr.len) {
        PyErr_Format(tio_MalformedPacket, "IPv4 header length %zd exceeds the %zd bytes given", ihl_bytes, hdr.len);
        goto done;
    }
    /* the checksum field itself counts as zero: sum what lies before it and after it (the addresses on) */
    uint64_t acc = tio_csum_add(0, p, TIO_IPV4_CHECKSUM);
    acc = tio_csum_add(acc, p + TIO_IPV4_SRC, (size_t)ihl_bytes - TIO_IPV4_SRC);
    result = PyLong_FromLong((uint16_t)~tio_csum_fold(acc));
done:
    PyBuffer_Release(&hdr);
    return result;
}

int tio_packet_and_vnet(PyObject *args, const char *format, int packet_flags, Py_buffer *pkt,
                        long fields[TIO_VNET_NFIELDS])
{
    PyObject *first, *second;
    if (!PyArg_ParseTuple(args, format, &first, &second))
        return -1;
    PyObject *pkt_obj = packet_flags & TIO_PACKET_FIRST ? first : second;
    PyObject *hdr_obj = packet_flags & TIO_PACKET_FIRST ? second : first;
    if (PyObject_GetBuffer(pkt_obj, pkt, PyBUF_SIMPLE) < 0)
        return -1;
    if (packet_flags & TIO_PACKET_WRITABLE && pkt->readonly)
        PyErr_Format(PyExc_TypeError, "%s needs a writable buffer", strchr(format, ':') + 1);
    else if (tio_vnet_fields(hdr_obj, fields) == 0)
        return 0;
    PyBuffer_Release(pkt);
    return -1;
}

static PyObject *py_finish_checksum(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer pkt;
    long f[TIO_VNET_NFIELDS];
    if (tio_packet_and_vnet(args, "OO:finish_checksum", TIO_PACKET_FIRST | TIO_PACKET_WRITABLE, &pkt, f) < 0)
        return NULL;
    PyObject *result = NULL;
    if (f[TIO_VNET_FLAGS] & TIO_NEEDS_CSUM) {
        Py_ssize_t start = f[TIO_VNET_CSUM_START], offset = f[TIO_VNET_CSUM_OFFSET];
        Py_ssize_t field = start + offset;
        if (field + 2 > pkt.len) {
            PyErr_Format(tio_MalformedPacket,
                         "checksum field at csum_start %zd + csum_offset %zd lies outside the %zd-byte packet", start,
                         offset, pkt.len);
            goto done;
        }
        uint8_t *p = pkt.buf;
        uint64_t partial = tio_get16(p + field);
        tio_put16(p + field, 0);
        uint16_t value = (uint16_t)~tio_csum_fold(tio_csum_add(partial, p + start, (size_t)(pkt.len - start)));
        if (value == 0 && offset == TIO_UDP_CSUM_OFFSET) /* UDP: 0 would mean "no checksum" */
            value = 0xFFFF;
        tio_put16(p + field, value);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&pkt);
    return result;
}

PyMethodDef tio_checksum_methods[] = {
    {"checksum", (PyCFunction)(void (*)(void))py_checksum, METH_VARARGS | METH_KEYWORDS,
     "checksum(data, seed=0) -> int: RFC 1071 folded sum plus seed, not inverted."},
    {"pseudo_header_sum", py_pseudo_header_sum, METH_VARARGS,
     "pseudo_header_sum(src, dst, proto, l4_len) -> int: folded TCP/UDP pseudo-header sum."},
    {"ipv4_header_checksum", py_ipv4_header_checksum, METH_O,
     "ipv4_header_checksum(hdr) -> int: the value for the IPv4 header checksum field."},
    {"finish_checksum", py_finish_checksum, METH_VARARGS,
     "finish_checksum(pkt, hdr) -> None: completes a NEEDS_CSUM checksum in place."},
    {NULL, NULL, 0, NULL},
};

/* -- vectorised checksum bulk ------------------------------------------------
 * Each 32-bit lane accumulates the low and the high 16-bit halves of the
 * native words separately (65536 == 1 mod 0xFFFF, so their total is
 * congruent to the word sum). A lane gains at most 2 * 0xFFFF per 64 bytes,
 * so blocks of 16384 iterations cannot overflow it. GCC vector extensions
 * keep this portable; on x86-64 glibc an AVX2 clone is picked at load time
 * (target_clones needs ifunc support). */
typedef uint32_t tio_u32x8 __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define TIO_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef TIO_MULTIVERSION
#define TIO_MULTIVERSION
#endif

#define TIO_BLOCK_ITERS 16384

static inline uint64_t lanes_total(const tio_u32x8 *v)
{
    uint64_t total = 0;
    for (int i = 0; i < 8; i++)
        total += (*v)[i];
    return total;
}

/* The one bulk loop of both entry points below. With copy a compile-time constant in each, the always-inlined
 * body is specialised twice (the plain sum never touches dst), and each inlined copy is compiled for its
 * caller's target clone. */
static inline __attribute__((always_inline)) uint64_t csum_blocks(uint8_t *dst, const uint8_t *src, size_t n,
                                                                  const int copy)
{
    const tio_u32x8 low16 = {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
    uint64_t total = 0;
    size_t iters = n / 64;
    while (iters) {
        size_t block = iters < TIO_BLOCK_ITERS ? iters : TIO_BLOCK_ITERS;
        tio_u32x8 lo = {0}, hi = {0};
        for (size_t i = 0; i < block; i++, src += 64) {
            tio_u32x8 a, b;
            memcpy(&a, src, 32);
            memcpy(&b, src + 32, 32);
            if (copy) {
                memcpy(dst, &a, 32);
                memcpy(dst + 32, &b, 32);
                dst += 64;
            }
            lo += (a & low16) + (b & low16);
            hi += (a >> 16) + (b >> 16);
        }
        total += lanes_total(&lo) + lanes_total(&hi);
        iters -= block;
    }
    return total;
}

TIO_MULTIVERSION
uint64_t tio_csum_native64(const uint8_t *p, size_t n)
{
    return csum_blocks(NULL, p, n, 0);
}

TIO_MULTIVERSION
uint64_t tio_csum_copy_native64(uint8_t *dst, const uint8_t *src, size_t n)
{
    return csum_blocks(dst, src, n, 1);
}
