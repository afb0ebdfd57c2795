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
extern PyMethodDef tio_gso_write_methods[];
extern PyMethodDef tio_readloop_methods[];
extern PyMethodDef tio_writeloop_methods[];

/* Imports what the segmentation kernels need from tio_core (MalformedPacket,
 * GSOInfo, GSOProto) and adds their limits; returns 0 or -1 with an error. */
int tio_segment_init(PyObject *module);

/* Imports what plan_gso_write needs (GSOGeometryError, VirtioNetHdr,
 * GSOProto) and adds MAX_GSO_FRAGMENTS; runs after tio_segment_init. */
int tio_gso_write_init(PyObject *module);

/* Imports what read_batch needs (Packet, NO_GSO); runs after tio_segment_init. */
int tio_readloop_init(PyObject *module);

/* tio_core.errors.MalformedPacket, imported by tio_segment_init (which runs
 * before any kernel can be called). */
extern PyObject *tio_MalformedPacket;

/* tio_core.contract.GSOProto.TCP and .UDP, set by tio_segment_init (which runs
 * before every other area's init). */
extern PyObject *tio_proto_tcp, *tio_proto_udp;

/* The six virtio_net_hdr fields in wire order. */
enum { TIO_VNET_FLAGS, TIO_VNET_GSO_TYPE, TIO_VNET_HDR_LEN, TIO_VNET_GSO_SIZE,
       TIO_VNET_CSUM_START, TIO_VNET_CSUM_OFFSET, TIO_VNET_NFIELDS };

/* Reads a VirtioNetHdr (any 6-item sequence of ints) into fields[], checking
 * each against its u8/u16 range; 0, or -1 with TypeError / MalformedPacket. */
int tio_vnet_fields(PyObject *hdr, long fields[TIO_VNET_NFIELDS]);

/* How a kernel takes its packet (flags for tio_packet_and_vnet): as the first
 * of its two arguments (else the second), and whether it writes to it. */
enum { TIO_PACKET_FIRST = 1, TIO_PACKET_WRITABLE = 2 };

/* The common start of a kernel taking a packet and a VirtioNetHdr: parses
 * args by format ("OO:kernel_name"), then the packet's buffer into *pkt
 * (TypeError naming the kernel when it must be writable and is not) and the
 * header's fields into fields[]. 0 with *pkt held (release it), or -1 with an
 * error and nothing held. */
int tio_packet_and_vnet(PyObject *args, const char *format, int packet_flags, Py_buffer *pkt,
                        long fields[TIO_VNET_NFIELDS]);

/* The method table entry of the METH_FASTCALL kernel py_<name>, whose
 * docstring is <name>_doc (PyDoc_STRVAR beside the function). */
#define TIO_FASTCALL(name) {#name, (PyCFunction)(void (*)(void))py_##name, METH_FASTCALL, name##_doc}

/* module_name.attr, imported when the extension loads (the Python types and
 * exceptions the kernels return or raise); a new reference, or NULL. */
PyObject *tio_import_attr(const char *module_name, const char *attr);

/* tio_import_attr for a type the kernels fill with tp_alloc and
 * PyTuple_SET_ITEM: it must be a tuple subclass without __dict__ (else
 * TypeError naming it). A new reference, or NULL. */
PyObject *tio_import_tuple_type(const char *module_name, const char *attr);

/* Whether a METH_FASTCALL kernel got `expected` arguments: 0, or -1 with
 * TypeError "<kernel> expected N arguments, got M". */
int tio_check_nargs(const char *kernel, Py_ssize_t nargs, Py_ssize_t expected);

/* A file descriptor argument (an int that fits a C int) into *fd: 0, or -1
 * with TypeError or OverflowError "<kernel>: fd is out of range". */
int tio_fd_arg(PyObject *obj, const char *kernel, int *fd);

/* A size or count argument via __index__ into *out: 0, or -1 with TypeError
 * or OverflowError (beyond Py_ssize_t). */
int tio_ssize_arg(PyObject *obj, Py_ssize_t *out);

/* A memoryview that nobody else has seen yet (1-D unsigned bytes, stride 1,
 * holding offset + len bytes) narrowed in place to [offset, offset + len),
 * exactly as slicing would (it stays contiguous), without the slice objects.
 * Returns view. */
static inline PyObject *tio_narrowed_view(PyObject *view, Py_ssize_t offset, Py_ssize_t len)
{
    Py_buffer *b = PyMemoryView_GET_BUFFER(view);
    b->buf = (char *)b->buf + offset;
    b->len = len;
    b->shape[0] = len;
    return view;
}

/* An int argument as long long via __index__; values beyond long long are
 * clamped so that range checks reject them. 0, or -1 with an error. */
int tio_as_ll(PyObject *obj, long long *out);

/* The IP version of the len-byte header at p when it is 4 or 6, with *min_hdr
 * set to that version's fixed header length (the caller words a short
 * header); otherwise -1 with `error` raised by the format bad_version, which
 * takes the version found (0 for no bytes) as its one %d. */
int tio_ip_version_checked(const uint8_t *p, Py_ssize_t len, PyObject *error, const char *bad_version,
                           Py_ssize_t *min_hdr);

/* What gso_info_from_vnet checks of a packet (the len bytes at p) against its
 * virtio_net_hdr fields, without building the GSOInfo: 0, or -1 with
 * MalformedPacket carrying gso_info_from_vnet's message. */
int tio_check_superpacket(const long f[TIO_VNET_NFIELDS], const uint8_t *p, Py_ssize_t len);

/* finish_checksum on the len bytes at p (writable) with these header fields:
 * completes a NEEDS_CSUM checksum in place; 0, or -1 with MalformedPacket. */
int tio_finish_checksum(const long f[TIO_VNET_NFIELDS], uint8_t *p, Py_ssize_t len);

/* gso_info_from_vnet on the len bytes at p with these header fields: a new
 * reference to the GSOInfo (NO_GSO for GSO_NONE), or NULL with MalformedPacket. */
PyObject *tio_gso_info(const long f[TIO_VNET_NFIELDS], const uint8_t *p, Py_ssize_t len);

#endif
