/* Module definition of tio_core._ckernels: gathers the per-area tables. */
#include "tio.h"
#include "wire.h"

/* The wire facts the kernels are built on, exported under wire.py's names so a
 * test can hold the two definitions to each other. */
static const struct {
    const char *name;
    long value;
} wire_constants[] = {
#define WIRE(name) {#name, TIO_##name}
    WIRE(MAX_IP_PACKET),
    WIRE(IPPROTO_TCP),
    WIRE(IPPROTO_UDP),
    WIRE(IPV4_MIN_HDR),
    WIRE(IPV6_HDR),
    WIRE(IPV4_TOS),
    WIRE(IPV4_TOTAL_LENGTH),
    WIRE(IPV4_ID),
    WIRE(IPV4_FRAG),
    WIRE(IPV4_TTL),
    WIRE(IPV4_PROTOCOL),
    WIRE(IPV4_CHECKSUM),
    WIRE(IPV4_SRC),
    WIRE(IPV4_ADDR_LEN),
    WIRE(IPV4_DF),
    WIRE(IPV4_MF),
    WIRE(IPV4_FRAG_OFFSET_MASK),
    WIRE(IPV6_PAYLOAD_LENGTH),
    WIRE(IPV6_NEXT_HEADER),
    WIRE(IPV6_HOP_LIMIT),
    WIRE(IPV6_SRC),
    WIRE(IPV6_ADDR_LEN),
    WIRE(IPV6_EXT_NEXT_HEADER),
    WIRE(IPV6_EXT_LENGTH),
    WIRE(IPV6_EXT_UNIT),
    WIRE(IPPROTO_HOPOPTS),
    WIRE(IPPROTO_ROUTING),
    WIRE(IPPROTO_FRAGMENT),
    WIRE(IPPROTO_ESP),
    WIRE(IPPROTO_AH),
    WIRE(IPPROTO_DSTOPTS),
    WIRE(IPPROTO_MH),
    WIRE(IPPROTO_HIP),
    WIRE(IPPROTO_SHIM6),
    WIRE(IPPROTO_EXP1),
    WIRE(IPPROTO_EXP2),
    WIRE(TCP_MIN_HDR),
    WIRE(UDP_HDR),
    WIRE(L4_PORTS_LEN),
    WIRE(TCP_SEQ),
    WIRE(TCP_ACK_SEQ),
    WIRE(TCP_DATA_OFFSET),
    WIRE(TCP_FLAGS),
    WIRE(TCP_WINDOW),
    WIRE(TCP_URG_PTR),
    WIRE(TCP_RESERVED_MASK),
    WIRE(UDP_LENGTH),
    WIRE(TCP_FIN),
    WIRE(TCP_SYN),
    WIRE(TCP_RST),
    WIRE(TCP_PSH),
    WIRE(TCP_ACK),
    WIRE(TCP_URG),
    WIRE(TCP_ECE),
    WIRE(TCP_CWR),
    WIRE(UDP_GSO_MAX_SEGMENTS),
    WIRE(UDP_GSO_MAX_SEGMENTS_OLD),
    WIRE(VIRTIO_NET_HDR_LEN),
    WIRE(NEEDS_CSUM),
    WIRE(DATA_VALID),
    WIRE(RSC_INFO),
    WIRE(GSO_NONE),
    WIRE(GSO_TCPV4),
    WIRE(GSO_UDP),
    WIRE(GSO_TCPV6),
    WIRE(GSO_UDP_L4),
    WIRE(GSO_ECN),
    WIRE(TCP_CSUM_OFFSET),
    WIRE(UDP_CSUM_OFFSET),
#undef WIRE
};

PyObject *tio_import_attr(const char *module_name, const char *attr)
{
    PyObject *module = PyImport_ImportModule(module_name);
    if (module == NULL)
        return NULL;
    PyObject *value = PyObject_GetAttrString(module, attr);
    Py_DECREF(module);
    return value;
}

PyObject *tio_import_tuple_type(const char *module_name, const char *attr)
{
    PyObject *type = tio_import_attr(module_name, attr);
    if (type == NULL)
        return NULL;
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type) ||
        ((PyTypeObject *)type)->tp_dictoffset != 0) {
        PyErr_Format(PyExc_TypeError, "%s.%s must be a tuple subclass without __dict__", module_name, attr);
        Py_DECREF(type);
        return NULL;
    }
    return type;
}

static int add_wire_constants(PyObject *module)
{
    for (size_t i = 0; i < sizeof wire_constants / sizeof wire_constants[0]; i++)
        if (PyModule_AddIntConstant(module, wire_constants[i].name, wire_constants[i].value) < 0)
            return -1;
    return 0;
}

static struct PyModuleDef ckernels_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tio_core._ckernels",
    .m_doc = "C packet kernels of tio_core; tio_core.kernels._pykernels and "
             "tio_core.coalesce._pycoalesce (and tio_core.kernels.gso_write, "
             "tio_core.kernels.readloop) are the twins.",
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
        PyModule_AddFunctions(module, tio_gso_write_methods) < 0 ||
        PyModule_AddFunctions(module, tio_readloop_methods) < 0 ||
        PyModule_AddFunctions(module, tio_writeloop_methods) < 0 || add_wire_constants(module) < 0 ||
        tio_segment_init(module) < 0 || tio_gso_write_init(module) < 0 || tio_readloop_init(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
