/* plan_gso_write and plan_even_gso_write of tio_core._ckernels: the geometry
 * check every backend runs on each write_gso, twins of
 * tio_core.kernels.gso_write.py_plan_gso_write / py_plan_even_gso_write with
 * the same results, exceptions and messages (GSOGeometryError, checks in the
 * same order). They run once per superpacket written, which is why they are in C.
 *
 * Memory safety: every header byte is read only after its buffer's length
 * has been checked to hold it. */
#include "tio.h"
#include "wire.h"

/* As in the pure twin (which explains it): the TCP fragment cap of one write. */
#define MAX_GSO_FRAGMENTS 250
/* Joined headers up to this size are checked from the stack. */
#define HEADER_STACK 512

static PyObject *geometry_error, *vnet_hdr_type, *str_name;

/* 1 for TCP, 0 for UDP (compared as the twin does, with ==), -1 with an error. */
static int proto_is_tcp(PyObject *proto)
{
    int equal = PyObject_RichCompareBool(proto, tio_proto_tcp, Py_EQ);
    if (equal != 0)
        return equal;
    if ((equal = PyObject_RichCompareBool(proto, tio_proto_udp, Py_EQ)) < 0)
        return -1;
    if (equal)
        return 0;
    PyErr_Format(geometry_error, "write_gso: proto must be GSOProto.TCP or GSOProto.UDP, got %R", proto);
    return -1;
}

/* GSOGeometryError "write_gso: <proto.name> header is <len> bytes, needs at least <min>"; proto.name is
 * looked up as in the twin (an AttributeError for a proto without one). */
static void short_transport(PyObject *proto, Py_ssize_t len, int min_len)
{
    PyObject *name = PyObject_GetAttr(proto, str_name);
    if (name == NULL)
        return;
    PyErr_Format(geometry_error, "write_gso: %S header is %zd bytes, needs at least %d", name, len, min_len);
    Py_DECREF(name);
}

/* Replaces the MalformedPacket set by tio_check_superpacket with GSOGeometryError("write_gso: <its message>"). */
static void as_geometry_error(void)
{
    if (!PyErr_ExceptionMatches(tio_MalformedPacket))
        return;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *message = value != NULL ? PyObject_Str(value) : NULL;
    if (message != NULL) {
        PyErr_Format(geometry_error, "write_gso: %U", message);
        Py_DECREF(message);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
}

/* The twin's _check_headers: the IP version once the headers are complete and
 * agree with each other and with proto (tcp), or -1 with an error. */
static int check_headers(const Py_buffer *ip, const Py_buffer *l4, PyObject *proto, int tcp)
{
    const uint8_t *ip_p = ip->buf, *l4_p = l4->buf;
    Py_ssize_t ip_len = ip->len, l4_len = l4->len;
    int min_l4 = tcp ? TIO_TCP_MIN_HDR : TIO_UDP_HDR;
    if (l4_len < min_l4) {
        short_transport(proto, l4_len, min_l4);
        return -1;
    }
    Py_ssize_t min_ip;
    int version = tio_ip_version_checked(ip_p, ip_len, geometry_error, "write_gso: IP version must be 4 or 6, got %d",
                                         &min_ip);
    if (version < 0)
        return -1;
    if (ip_len < min_ip) {
        PyErr_Format(geometry_error, "write_gso: IPv%d header is %zd bytes, needs at least %zd", version, ip_len,
                     min_ip);
        return -1;
    }
    if (version == 4 && (Py_ssize_t)tio_ipv4_hdr_len(ip_p) != ip_len) {
        PyErr_Format(geometry_error, "write_gso: IPv4 IHL says %d header bytes, ip_hdr has %zd",
                     (int)tio_ipv4_hdr_len(ip_p), ip_len);
        return -1;
    }
    if (tcp) {
        Py_ssize_t doff = (Py_ssize_t)tio_tcp_hdr_len(l4_p); /* l4_len >= TCP_MIN_HDR holds the byte */
        if (doff != l4_len) {
            PyErr_Format(geometry_error, "write_gso: TCP data offset says %zd header bytes, transport_hdr has %zd",
                         doff, l4_len);
            return -1;
        }
    } else if (l4_len != TIO_UDP_HDR) {
        PyErr_Format(geometry_error, "write_gso: UDP header is %zd bytes, must be %d", l4_len, TIO_UDP_HDR);
        return -1;
    }
    /* The rest (protocol number, IPv6 extension chain, fragments) as a read from the kernel is checked:
     * the header gso_info_from_vnet would get, with the fields' range check it does first. */
    Py_ssize_t hdr_len = ip_len + l4_len;
    if (hdr_len > UINT16_MAX) {
        PyErr_Format(geometry_error, "write_gso: virtio_net_hdr hdr_len %zd is out of range 0..%ld", hdr_len,
                     (long)UINT16_MAX);
        return -1;
    }
    long f[TIO_VNET_NFIELDS] = {
        [TIO_VNET_FLAGS] = TIO_NEEDS_CSUM,
        [TIO_VNET_GSO_TYPE] = tcp ? (version == 4 ? TIO_GSO_TCPV4 : TIO_GSO_TCPV6) : TIO_GSO_UDP_L4,
        [TIO_VNET_HDR_LEN] = hdr_len,
        [TIO_VNET_GSO_SIZE] = 1,
        [TIO_VNET_CSUM_START] = ip_len,
        [TIO_VNET_CSUM_OFFSET] = tcp ? TIO_TCP_CSUM_OFFSET : TIO_UDP_CSUM_OFFSET,
    };
    uint8_t stack[HEADER_STACK];
    uint8_t *headers = hdr_len <= HEADER_STACK ? stack : PyMem_Malloc((size_t)hdr_len);
    if (headers == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(headers, ip_p, (size_t)ip_len);
    memcpy(headers + ip_len, l4_p, (size_t)l4_len);
    int status = tio_check_superpacket(f, headers, hdr_len);
    if (headers != stack)
        PyMem_Free(headers);
    if (status < 0) {
        as_geometry_error();
        return -1;
    }
    return version;
}

/* The twin's fragment-size loop: the sum of the sizes, or -1 with GSOGeometryError naming the first bad one. */
static Py_ssize_t payload_bytes(PyObject *const *items, Py_ssize_t count, Py_ssize_t *gso_size)
{
    Py_ssize_t sizes_sum = 0, first = 0;
    for (Py_ssize_t index = 0; index < count; index++) {
        Py_ssize_t size = PyObject_Size(items[index]);
        if (size < 0)
            return -1;
        if (index == 0)
            first = size;
        if (size == 0) {
            PyErr_Format(geometry_error, "write_gso: fragment %zd is empty", index);
            return -1;
        }
        if (size > first || (size < first && index != count - 1)) {
            PyErr_Format(geometry_error, "write_gso: fragment %zd is %zd bytes; all but the last must be %zd", index,
                         size, first);
            return -1;
        }
        sizes_sum += size;
    }
    *gso_size = first;
    return sizes_sum;
}

/* VirtioNetHdr(*fields), filled as tuple.__new__ would fill it (no Python-level __new__). */
static PyObject *new_vnet_hdr(const long f[TIO_VNET_NFIELDS])
{
    PyObject *items[TIO_VNET_NFIELDS];
    for (int i = 0; i < TIO_VNET_NFIELDS; i++) {
        if ((items[i] = PyLong_FromLong(f[i])) == NULL) {
            while (i--)
                Py_DECREF(items[i]);
            return NULL;
        }
    }
    PyTypeObject *type = (PyTypeObject *)vnet_hdr_type;
    PyObject *hdr = type->tp_alloc(type, TIO_VNET_NFIELDS);
    for (int i = 0; i < TIO_VNET_NFIELDS; i++) {
        if (hdr != NULL)
            PyTuple_SET_ITEM(hdr, i, items[i]);
        else
            Py_DECREF(items[i]);
    }
    return hdr;
}

/* The twin's _plan: count and size limits, then the header. */
static PyObject *plan(Py_ssize_t ip_len, const Py_buffer *l4, int tcp, int version, Py_ssize_t count,
                      Py_ssize_t gso_size, Py_ssize_t payload)
{
    if (tcp && count > MAX_GSO_FRAGMENTS) {
        PyErr_Format(geometry_error, "write_gso: %zd fragments, at most %d", count, MAX_GSO_FRAGMENTS);
        return NULL;
    }
    if (!tcp && count > TIO_UDP_GSO_MAX_SEGMENTS) {
        PyErr_Format(geometry_error, "write_gso: %zd fragments, the kernel takes at most %d UDP segments", count,
                     TIO_UDP_GSO_MAX_SEGMENTS);
        return NULL;
    }
    Py_ssize_t hdr_len = ip_len + l4->len;
    if (hdr_len + payload > TIO_MAX_IP_PACKET) {
        PyErr_Format(geometry_error, "write_gso: superpacket would be %zd bytes, at most %d", hdr_len + payload,
                     TIO_MAX_IP_PACKET);
        return NULL;
    }
    long gso_type;
    if (count == 1) {
        gso_type = TIO_GSO_NONE;
        gso_size = 0;
    } else if (tcp) {
        int ecn = (((const uint8_t *)l4->buf)[TIO_TCP_FLAGS] & TIO_TCP_CWR) != 0; /* l4->len >= TCP_MIN_HDR */
        gso_type = (version == 4 ? TIO_GSO_TCPV4 : TIO_GSO_TCPV6) | (ecn ? TIO_GSO_ECN : 0);
    } else {
        gso_type = TIO_GSO_UDP_L4;
    }
    long f[TIO_VNET_NFIELDS] = {
        [TIO_VNET_FLAGS] = TIO_NEEDS_CSUM,
        [TIO_VNET_GSO_TYPE] = gso_type,
        [TIO_VNET_HDR_LEN] = (long)hdr_len,
        [TIO_VNET_GSO_SIZE] = (long)gso_size,
        [TIO_VNET_CSUM_START] = (long)ip_len,
        [TIO_VNET_CSUM_OFFSET] = tcp ? TIO_TCP_CSUM_OFFSET : TIO_UDP_CSUM_OFFSET,
    };
    return new_vnet_hdr(f);
}

/* The twin's _check_headers on the call's ip_hdr and transport_hdr (args[0]
 * and args[1], taken into *ip and *l4) and proto (*tcp: whether it is TCP):
 * the IP version, or -1 with an error. Release *ip and *l4 with
 * release_headers either way. */
static int take_headers(PyObject *const *args, PyObject *proto, Py_buffer *ip, Py_buffer *l4, int *tcp)
{
    if ((*tcp = proto_is_tcp(proto)) < 0 || PyObject_GetBuffer(args[0], ip, PyBUF_SIMPLE) < 0 ||
        PyObject_GetBuffer(args[1], l4, PyBUF_SIMPLE) < 0)
        return -1;
    return check_headers(ip, l4, proto, *tcp);
}

static void release_headers(Py_buffer *ip, Py_buffer *l4)
{
    if (l4->obj != NULL)
        PyBuffer_Release(l4);
    if (ip->obj != NULL)
        PyBuffer_Release(ip);
}

PyDoc_STRVAR(plan_gso_write_doc, "plan_gso_write(ip_hdr, transport_hdr, payloads, proto) -> VirtioNetHdr | None\n"
                                  "C twin of tio_core.kernels.gso_write.plan_gso_write.");

static PyObject *py_plan_gso_write(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (tio_check_nargs("plan_gso_write", nargs, 4) < 0)
        return NULL;
    PyObject *payloads = PySequence_Fast(args[2], "plan_gso_write: payloads must be a sequence");
    if (payloads == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(payloads);
    if (count == 0) { /* a no-op, whatever the headers */
        Py_DECREF(payloads);
        Py_RETURN_NONE;
    }
    PyObject *result = NULL;
    Py_buffer ip = {0}, l4 = {0};
    int tcp, version = take_headers(args, args[3], &ip, &l4, &tcp);
    Py_ssize_t gso_size = 0, payload;
    if (version >= 0 && (payload = payload_bytes(PySequence_Fast_ITEMS(payloads), count, &gso_size)) >= 0)
        result = plan(ip.len, &l4, tcp, version, count, gso_size, payload);
    release_headers(&ip, &l4);
    Py_DECREF(payloads);
    return result;
}

PyDoc_STRVAR(plan_even_gso_write_doc,
             "plan_even_gso_write(ip_hdr, transport_hdr, payload_bytes, gso_size, proto) -> VirtioNetHdr\n"
             "C twin of tio_core.kernels.gso_write.py_plan_even_gso_write.");

static PyObject *py_plan_even_gso_write(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (tio_check_nargs("plan_even_gso_write", nargs, 5) < 0)
        return NULL;
    long long payload_ll, gso_size_ll; /* clamped beyond long long: still refused below */
    if (tio_as_ll(args[2], &payload_ll) < 0 || tio_as_ll(args[3], &gso_size_ll) < 0)
        return NULL;
    if (payload_ll <= 0 || gso_size_ll <= 0) {
        PyErr_Format(geometry_error, "write_gso: payload bytes %S and fragment size %S must be positive", args[2],
                     args[3]);
        return NULL;
    }
    if (payload_ll > TIO_MAX_IP_PACKET) {
        PyErr_Format(geometry_error, "write_gso: payload of %S bytes, a superpacket is at most %d", args[2],
                     TIO_MAX_IP_PACKET);
        return NULL;
    }
    Py_ssize_t payload = (Py_ssize_t)payload_ll;
    Py_ssize_t gso_size = gso_size_ll > TIO_MAX_IP_PACKET ? TIO_MAX_IP_PACKET + 1 : (Py_ssize_t)gso_size_ll;
    PyObject *result = NULL;
    Py_buffer ip = {0}, l4 = {0};
    int tcp, version = take_headers(args, args[4], &ip, &l4, &tcp);
    if (version >= 0)
        result = plan(ip.len, &l4, tcp, version, payload / gso_size + (payload % gso_size != 0), gso_size, payload);
    release_headers(&ip, &l4);
    return result;
}

PyMethodDef tio_gso_write_methods[] = {
    TIO_FASTCALL(plan_gso_write),
    TIO_FASTCALL(plan_even_gso_write),
    {NULL, NULL, 0, NULL},
};

int tio_gso_write_init(PyObject *module)
{
    if ((geometry_error = tio_import_attr("tio_core.errors", "GSOGeometryError")) == NULL ||
        (vnet_hdr_type = tio_import_tuple_type("tio_core.wire", "VirtioNetHdr")) == NULL)
        return -1;
    if ((str_name = PyUnicode_InternFromString("name")) == NULL)
        return -1;
    return PyModule_AddIntConstant(module, "MAX_GSO_FRAGMENTS", MAX_GSO_FRAGMENTS);
}
