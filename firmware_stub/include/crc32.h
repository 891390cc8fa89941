/* CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) — the same value as zlib.crc32. */
#ifndef PROVISION_CRC32_H
#define PROVISION_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32_update(0, a) then crc32_update(that, b) == zlib.crc32(a + b). */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

#endif
