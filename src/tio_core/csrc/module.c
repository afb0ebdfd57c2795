/* Module definition of tio_core._ckernels: gathers the per-area tables. */
#include "tio.h"
#include "wire.h"

/* The wire facts the kernels are built on, exported under wire.py's names so a
 * test can hold the two definitions to each other. */
static const struct {
    const char *name;
    long value;
} wire_constants[] = {
    {"MAX_IP_PACKET", TIO_MAX_IP_PACKET},
    {"IPPROTO_TCP", TIO_IPPROTO_TCP},
    {"IPPROTO_UDP", TIO_IPPROTO_UDP},
    {"IPV4_MIN_HDR", TIO_IPV4_MIN_HDR},
    {"IPV6_HDR", TIO_IPV6_HDR},
    {"IPV4_TOTAL_LENGTH", TIO_IPV4_TOTAL_LENGTH},
    {"IPV4_ID", TIO_IPV4_ID},
    {"IPV4_FRAG", TIO_IPV4_FRAG},
    {"IPV4_PROTOCOL", TIO_IPV4_PROTOCOL},
    {"IPV4_CHECKSUM", TIO_IPV4_CHECKSUM},
    {"IPV4_DF", TIO_IPV4_DF},
    {"IPV6_PAYLOAD_LENGTH", TIO_IPV6_PAYLOAD_LENGTH},
    {"IPV6_NEXT_HEADER", TIO_IPV6_NEXT_HEADER},
    {"TCP_MIN_HDR", TIO_TCP_MIN_HDR},
    {"UDP_HDR", TIO_UDP_HDR},
    {"TCP_SEQ", TIO_TCP_SEQ},
    {"TCP_DATA_OFFSET", TIO_TCP_DATA_OFFSET},
    {"TCP_FLAGS", TIO_TCP_FLAGS},
    {"UDP_LENGTH", TIO_UDP_LENGTH},
    {"TCP_FIN", TIO_TCP_FIN},
    {"TCP_SYN", TIO_TCP_SYN},
    {"TCP_RST", TIO_TCP_RST},
    {"TCP_PSH", TIO_TCP_PSH},
    {"TCP_ACK", TIO_TCP_ACK},
    {"TCP_URG", TIO_TCP_URG},
    {"TCP_ECE", TIO_TCP_ECE},
    {"TCP_CWR", TIO_TCP_CWR},
    {"VIRTIO_NET_HDR_LEN", TIO_VIRTIO_NET_HDR_LEN},
    {"NEEDS_CSUM", TIO_NEEDS_CSUM},
    {"DATA_VALID", TIO_DATA_VALID},
    {"RSC_INFO", TIO_RSC_INFO},
    {"GSO_NONE", TIO_GSO_NONE},
    {"GSO_TCPV4", TIO_GSO_TCPV4},
    {"GSO_UDP", TIO_GSO_UDP},
    {"GSO_TCPV6", TIO_GSO_TCPV6},
    {"GSO_UDP_L4", TIO_GSO_UDP_L4},
    {"GSO_ECN", TIO_GSO_ECN},
    {"TCP_CSUM_OFFSET", TIO_TCP_CSUM_OFFSET},
    {"UDP_CSUM_OFFSET", TIO_UDP_CSUM_OFFSET},
    {"UDP_GSO_MAX_SEGMENTS", TIO_UDP_GSO_MAX_SEGMENTS},
    {"UDP_GSO_MAX_SEGMENTS_OLD", TIO_UDP_GSO_MAX_SEGMENTS_OLD},
};

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
    .m_doc = "C packet kernels of tio_core; tio_core.kernels._pykernels and tio_core.coalesce._pycoalesce are the twins.",
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
        add_wire_constants(module) < 0 || tio_segment_init(module) < 0 || tio_coalesce_init(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
