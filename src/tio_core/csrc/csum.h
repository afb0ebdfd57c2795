/* RFC 1071 Internet checksum primitives shared by every C kernel.
 * Sums are kept wide (64-bit) and folded to 16 bits only at the end. */
#ifndef TIO_CSUM_H
#define TIO_CSUM_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Sums of the native-endian 32-bit words of p[0..n), n a multiple of 64:
 * the vectorised bulk of a checksum (defined in checksum.c). The _copy form
 * also copies src to dst in the same pass. Not folded. */
uint64_t tio_csum_native64(const uint8_t *p, size_t n);
uint64_t tio_csum_copy_native64(uint8_t *dst, const uint8_t *src, size_t n);

/* Below this many bytes the scalar loop beats calling the vector kernel. */
#define TIO_CSUM_BULK_MIN 128

/* Native-endian word sum of a short (or tail) run; odd tail padded with zero. */
static inline uint64_t tio_csum_native_tail(uint64_t native, const uint8_t *p, size_t n)
{
    while (n >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        native += w;
        p += 4;
        n -= 4;
    }
    if (n) {
        /* 1 to 3 bytes, zero-padded to one more word: a whole 16-bit word and
         * a lone byte padded with zero count as they would alone (65536 == 1
         * mod 0xFFFF). */
        uint8_t tail[4] = {p[0], n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, 0};
        uint32_t w;
        memcpy(&w, tail, 4);
        native += w;
    }
    return native;
}

/* Folds a wide sum to a 16-bit one's-complement sum (not inverted). */
static inline uint16_t tio_csum_fold(uint64_t acc)
{
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

/* Folds a native-endian word sum to 16 bits in big-endian (network) order:
 * one's-complement addition is byte-order independent, so summing native
 * words and byte-swapping the folded result gives the big-endian sum. */
static inline uint64_t tio_csum_native_to_be(uint64_t native)
{
    uint16_t folded = tio_csum_fold(native);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    folded = (uint16_t)(folded << 8 | folded >> 8);
#endif
    return folded;
}

/* Adds the bytes of p[0..n) as big-endian 16-bit words to acc. An odd tail
 * byte is padded with zero, as RFC 1071 says. */
static inline uint64_t tio_csum_add(uint64_t acc, const uint8_t *p, size_t n)
{
    uint64_t native = 0;
    if (n >= TIO_CSUM_BULK_MIN) {
        size_t bulk = n & ~(size_t)63;
        native = tio_csum_native64(p, bulk);
        p += bulk;
        n -= bulk;
    }
    return acc + tio_csum_native_to_be(tio_csum_native_tail(native, p, n));
}

/* memcpy(dst, src, n) and tio_csum_add(acc, src, n) in one pass. */
static inline uint64_t tio_csum_copy(uint64_t acc, uint8_t *dst, const uint8_t *src, size_t n)
{
    uint64_t native = 0;
    if (n >= TIO_CSUM_BULK_MIN) {
        size_t bulk = n & ~(size_t)63;
        native = tio_csum_copy_native64(dst, src, bulk);
        dst += bulk;
        src += bulk;
        n -= bulk;
    }
    memcpy(dst, src, n);
    return acc + tio_csum_native_to_be(tio_csum_native_tail(native, src, n));
}

/* Big-endian (network order) loads and stores. */
static inline uint16_t tio_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void tio_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline uint32_t tio_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void tio_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif
