/* segment kernels of tio_core._ckernels (filled in by the segment work). */
#include "tio.h"

PyMethodDef tio_segment_methods[] = {
    {NULL, NULL, 0, NULL},
};

int tio_segment_init(PyObject *module)
{
    (void)module;
    return 0;
}
