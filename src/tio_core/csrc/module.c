/* Module definition of tio_core._ckernels: gathers the per-area tables. */
#include "tio.h"

static struct PyModuleDef ckernels_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tio_core._ckernels",
    .m_doc = "C packet kernels of tio_core; tio_core._pykernels is the reference twin.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__ckernels(void)
{
    PyObject *module = PyModule_Create(&ckernels_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddFunctions(module, tio_checksum_methods) < 0 ||
        PyModule_AddFunctions(module, tio_segment_methods) < 0 ||
        PyModule_AddFunctions(module, tio_coalesce_methods) < 0 ||
        tio_segment_init(module) < 0 || tio_coalesce_init(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
