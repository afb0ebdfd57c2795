/* Shared declarations of the tio_core._ckernels extension.
 * Each area of the packet kernels lives in its own .c file and contributes a
 * method table that module.c adds to the module. */
#ifndef TIO_H
#define TIO_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

extern PyMethodDef tio_checksum_methods[];
extern PyMethodDef tio_segment_methods[];
extern PyMethodDef tio_coalesce_methods[];

/* Sets up exception types etc. for an area; returns 0 or -1 with an error. */
int tio_segment_init(PyObject *module);
int tio_coalesce_init(PyObject *module);

#endif
