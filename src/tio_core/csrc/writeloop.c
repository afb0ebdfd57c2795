/* write_many of tio_core._ckernels: a batch of packets written to one fd, one
 * write(v) each, with the GIL released for the whole batch. Twin of
 * tio_core.kernels.write_many.py_write_many (same results and exceptions).
 *
 * A replay or a forwarder writes runs of plain packets; in Python each write
 * costs several calls (size check, lock, iov tuple, os.writev) around the
 * syscall. Here the loop is the syscalls alone. The loop stops at the first
 * packet it cannot write and says why, so the caller (which maps errnos to
 * its own errors, waits on EAGAIN and counts drops) resumes after it. */
#include <errno.h>
#include <sys/uio.h>

#include "tio.h"

/* Batches up to this many packets hold their buffers on the stack. */
#define STACK_BUFFERS 64

PyDoc_STRVAR(write_many_doc, "write_many(fd, packets, header, start, max_size) -> (stop, written, bytes, error)\n"
                              "C twin of tio_core.kernels.write_many.py_write_many.");

static PyObject *py_write_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int fd;
    Py_ssize_t start, max_size;
    if (tio_check_nargs("write_many", nargs, 5) < 0 || tio_fd_arg(args[0], "write_many", &fd) < 0 ||
        tio_ssize_arg(args[3], &start) < 0 || tio_ssize_arg(args[4], &max_size) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(args[1], "write_many: packets must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (start < 0 || start > n) {
        PyErr_Format(PyExc_ValueError, "write_many: start %zd is outside 0..%zd", start, n);
        Py_DECREF(seq);
        return NULL;
    }
    Py_buffer header;
    if (PyObject_GetBuffer(args[2], &header, PyBUF_SIMPLE) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    /* Every buffer is taken before the first write: a packet that is no
     * buffer raises with nothing written. */
    Py_ssize_t count = n - start, held = 0;
    Py_buffer stack[STACK_BUFFERS];
    Py_buffer *bufs = count <= STACK_BUFFERS ? stack : PyMem_Malloc(sizeof(Py_buffer) * (size_t)count);
    PyObject *result = NULL;
    if (bufs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (; held < count; held++)
        if (PyObject_GetBuffer(items[start + held], &bufs[held], PyBUF_SIMPLE) < 0)
            goto done;

    Py_ssize_t index = start, written = 0, bytes = 0;
    int error = 0;
    struct iovec iov[2];
    int parts = 0;
    if (header.len > 0) {
        iov[0].iov_base = header.buf;
        iov[0].iov_len = (size_t)header.len;
        parts = 1;
    }
    Py_BEGIN_ALLOW_THREADS
    for (; index < n; index++) {
        Py_buffer *packet = &bufs[index - start];
        if (packet->len == 0 || packet->len > max_size) {
            error = -1; /* the caller raises what a single write would */
            break;
        }
        iov[parts].iov_base = packet->buf;
        iov[parts].iov_len = (size_t)packet->len;
        ssize_t got;
        do
            got = writev(fd, iov, parts + 1);
        while (got < 0 && errno == EINTR);
        if (got < 0) {
            error = errno;
            break;
        }
        written++;
        bytes += got > header.len ? got - header.len : 0;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nnni", index, written, bytes, error);
done:
    for (Py_ssize_t i = 0; i < held; i++)
        PyBuffer_Release(&bufs[i]);
    if (bufs != stack)
        PyMem_Free(bufs);
    PyBuffer_Release(&header);
    Py_DECREF(seq);
    return result;
}

PyMethodDef tio_writeloop_methods[] = {
    TIO_FASTCALL(write_many),
    {NULL, NULL, 0, NULL},
};
