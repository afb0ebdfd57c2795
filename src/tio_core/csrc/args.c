/* The first steps the METH_FASTCALL kernels (plan_gso_write, read_batch,
 * write_many) share: the argument count, a file descriptor, a size. Each
 * raises what the pure twin raises for the same argument, so a kernel's C and
 * pure versions keep equal messages. */
#include "tio.h"

#include <limits.h>

int tio_check_nargs(const char *kernel, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs == expected)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s expected %zd arguments, got %zd", kernel, expected, nargs);
    return -1;
}

int tio_fd_arg(PyObject *obj, const char *kernel, int *fd)
{
    long value = PyLong_AsLong(obj);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < INT_MIN || value > INT_MAX) {
        PyErr_Format(PyExc_OverflowError, "%s: fd is out of range", kernel);
        return -1;
    }
    *fd = (int)value;
    return 0;
}

int tio_ssize_arg(PyObject *obj, Py_ssize_t *out)
{
    Py_ssize_t value = PyNumber_AsSsize_t(obj, PyExc_OverflowError);
    if (value == -1 && PyErr_Occurred())
        return -1;
    *out = value;
    return 0;
}
