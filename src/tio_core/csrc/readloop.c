/* read_batch of tio_core._ckernels: the per-packet read loop of a TUN queue,
 * twin of tio_core.kernels.readloop.py_read_batch with the same packets,
 * GSOInfo, drop counts and errors.
 *
 * One call reads non-blocking until the batch cap, the buffer headroom or
 * EAGAIN, each packet right after the previous accepted one in the caller's
 * bytearray; the virtio_net_hdr (when the fd carries one) goes to a small
 * separate buffer so bodies are never copied. The GIL is released around each
 * readv only: the checks after it raise Python exceptions.
 *
 * Memory safety: the bytearray is exported (a memoryview of it is held) for
 * the whole call, so it cannot be resized while reads write into it; every
 * read gets the room left after the last accepted packet. */
#include "tio.h"
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

static PyObject *packet_type, *no_gso;

/* The drop reasons in the order of tio_core.kernels.readloop.DROP_REASONS. */
enum { DROP_SHORT_READ, DROP_TRUNCATED, DROP_GSO_TYPE, DROP_MALFORMED, DROP_NREASONS };
#define ACCEPTED (-1)

/* Packet(data, gso) as tuple.__new__ fills it; steals data, borrows gso. */
static PyObject *new_packet(PyObject *data, PyObject *gso)
{
    PyTypeObject *type = (PyTypeObject *)packet_type;
    PyObject *packet = type->tp_alloc(type, 2);
    if (packet == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    PyTuple_SET_ITEM(packet, 0, data);
    PyTuple_SET_ITEM(packet, 1, Py_NewRef(gso));
    return packet;
}

/* base[offset:offset + len] without the slice object: a copy of the memoryview
 * base that shares its managed buffer, narrowed (as segment.c's views). */
static PyObject *slice_of(PyObject *base, Py_ssize_t offset, Py_ssize_t len)
{
    PyObject *view = PyMemoryView_FromObject(base);
    return view != NULL ? tio_narrowed_view(view, offset, len) : NULL;
}

/* Appends str(the pending MalformedPacket) to *messages (created when first needed) and clears it; -1 if the
 * pending error is something else (left set) or the message could not be kept. */
static int keep_malformed(PyObject **messages)
{
    if (!PyErr_ExceptionMatches(tio_MalformedPacket))
        return -1;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *message = value != NULL ? PyObject_Str(value) : NULL;
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    if (message == NULL)
        return -1;
    if (*messages == NULL && (*messages = PyList_New(0)) == NULL) {
        Py_DECREF(message);
        return -1;
    }
    int status = PyList_Append(*messages, message);
    Py_DECREF(message);
    return status;
}

/* What VnetQueue._accept/_finish did with a packet of len bytes at p read with virtio_net_hdr h: ACCEPTED with *gso
 * a new reference, a DROP_* reason, or -2 with an error. A NEEDS_CSUM checksum is completed in place. */
static int vnet_accept(const uint8_t h[TIO_VIRTIO_NET_HDR_LEN], uint8_t *p, Py_ssize_t len, PyObject **gso,
                       PyObject **messages)
{
    if (h[0] == 0 && h[1] == TIO_GSO_NONE) { /* the common case: nothing to finish */
        *gso = Py_NewRef(no_gso);
        return ACCEPTED;
    }
    uint16_t u16[4]; /* hdr_len, gso_size, csum_start, csum_offset in the fd's (native) order */
    memcpy(u16, h + 2, sizeof u16);
    const long f[TIO_VNET_NFIELDS] = {h[0], h[1], u16[0], u16[1], u16[2], u16[3]};
    int base = h[1] & ~TIO_GSO_ECN;
    if (base == TIO_GSO_NONE) {
        if (tio_finish_checksum(f, p, len) == 0) {
            *gso = Py_NewRef(no_gso);
            return ACCEPTED;
        }
    } else if (base != TIO_GSO_TCPV4 && base != TIO_GSO_TCPV6 && base != TIO_GSO_UDP_L4) {
        return DROP_GSO_TYPE;
    } else if ((*gso = tio_gso_info(f, p, len)) != NULL) {
        return ACCEPTED;
    }
    return keep_malformed(messages) < 0 ? -2 : DROP_MALFORMED;
}

/* The OSError os.readv raises for err (the subclass its errno maps to). */
static PyObject *os_error(int err)
{
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
}

/* One readv into the header (when vnet) and body; the GIL is released around it, EINTR is retried after the
 * signal handlers ran. The byte count, or -1 with *err (0 with a Python error from a handler). */
static Py_ssize_t read_one(int fd, uint8_t *hdr, int vnet, uint8_t *body, Py_ssize_t room, int *err)
{
    struct iovec iov[2] = {{hdr, TIO_VIRTIO_NET_HDR_LEN}, {body, (size_t)room}};
    for (;;) {
        ssize_t got;
        int saved;
        Py_BEGIN_ALLOW_THREADS
        got = readv(fd, vnet ? iov : iov + 1, vnet ? 2 : 1);
        saved = errno;
        Py_END_ALLOW_THREADS
        if (got >= 0)
            return got;
        if (saved != EINTR) {
            *err = saved;
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            *err = 0;
            return -1;
        }
    }
}

PyDoc_STRVAR(read_batch_doc,
             "read_batch(fd, buffer, vnet, max_batch, headroom) -> (packets, drops, idle, error, malformed)\n"
             "C twin of tio_core.kernels.readloop.py_read_batch.");

static PyObject *py_read_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int fd;
    if (tio_check_nargs("read_batch", nargs, 5) < 0 || tio_fd_arg(args[0], "read_batch", &fd) < 0)
        return NULL;
    PyObject *buffer = args[1];
    if (!PyByteArray_Check(buffer)) {
        PyErr_Format(PyExc_TypeError, "read_batch needs a bytearray, got %s", Py_TYPE(buffer)->tp_name);
        return NULL;
    }
    int vnet = PyObject_IsTrue(args[2]);
    if (vnet < 0)
        return NULL;
    Py_ssize_t max_batch, headroom;
    if (tio_ssize_arg(args[3], &max_batch) < 0 || tio_ssize_arg(args[4], &headroom) < 0)
        return NULL;
    if (headroom < 1) {
        PyErr_Format(PyExc_ValueError, "read_batch: headroom must be positive, got %zd", headroom);
        return NULL;
    }

    PyObject *base = PyMemoryView_FromObject(buffer); /* held: the bytearray cannot be resized meanwhile */
    if (base == NULL)
        return NULL;
    PyObject *packets = PyList_New(0), *error = NULL, *messages = NULL;
    if (packets == NULL)
        goto fail;
    uint8_t *start = (uint8_t *)PyByteArray_AS_STRING(buffer);
    const Py_ssize_t size = PyByteArray_GET_SIZE(buffer), limit = size - headroom;
    const Py_ssize_t hdr_len = vnet ? TIO_VIRTIO_NET_HDR_LEN : 0;
    Py_ssize_t drops[DROP_NREASONS] = {0}, offset = 0;
    int idle = 0;
    uint8_t hdr[TIO_VIRTIO_NET_HDR_LEN];
    for (Py_ssize_t i = 0; i < max_batch && offset <= limit; i++) {
        int err;
        Py_ssize_t got = read_one(fd, hdr, vnet, start + offset, size - offset, &err);
        if (got < 0) {
            if (err == 0)
                goto fail; /* a signal handler raised */
            if (err == EAGAIN || err == EWOULDBLOCK)
                idle = 1;
            else if (PyList_GET_SIZE(packets) == 0 && (error = os_error(err)) == NULL)
                goto fail;
            break; /* after packets, the error shows again on the next call */
        }
        Py_ssize_t len = got - hdr_len;
        if (len <= 0) {
            drops[DROP_SHORT_READ]++;
            continue;
        }
        if (len == size - offset) { /* filled the room: a TUN read truncates silently */
            drops[DROP_TRUNCATED]++;
            continue;
        }
        PyObject *gso = NULL;
        int verdict = ACCEPTED;
        if (vnet)
            verdict = vnet_accept(hdr, start + offset, len, &gso, &messages);
        else
            gso = Py_NewRef(no_gso); /* a plain fd's packets are complete */
        if (verdict == -2)
            goto fail;
        if (verdict != ACCEPTED) {
            drops[verdict]++;
            continue;
        }
        PyObject *data = slice_of(base, offset, len);
        PyObject *packet = data != NULL ? new_packet(data, gso) : NULL;
        Py_DECREF(gso);
        if (packet == NULL)
            goto fail;
        int appended = PyList_Append(packets, packet);
        Py_DECREF(packet);
        if (appended < 0)
            goto fail;
        offset += len;
    }
    Py_DECREF(base);
    PyObject *malformed = messages != NULL ? PyList_AsTuple(messages) : PyTuple_New(0);
    Py_XDECREF(messages);
    if (malformed == NULL) {
        Py_DECREF(packets);
        Py_XDECREF(error);
        return NULL;
    }
    return Py_BuildValue("(N(nnnn)NNN)", packets, drops[DROP_SHORT_READ], drops[DROP_TRUNCATED],
                         drops[DROP_GSO_TYPE], drops[DROP_MALFORMED], PyBool_FromLong(idle),
                         error != NULL ? error : Py_NewRef(Py_None), malformed);
fail:
    Py_DECREF(base);
    Py_XDECREF(packets);
    Py_XDECREF(error);
    Py_XDECREF(messages);
    return NULL;
}

PyMethodDef tio_readloop_methods[] = {
    TIO_FASTCALL(read_batch),
    {NULL, NULL, 0, NULL},
};

int tio_readloop_init(PyObject *module)
{
    (void)module;
    if ((packet_type = tio_import_tuple_type("tio_core.contract", "Packet")) == NULL ||
        (no_gso = tio_import_attr("tio_core.contract", "NO_GSO")) == NULL)
        return -1;
    return 0;
}
