/*
 * uuid.c - UUIDv7 generation and parsing.
 */
#include <pthread.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "crypto.h"
#include "uuid.h"
#include "core/banned.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms;
static uint16_t last_seq;

/*
 * Random bytes come from the system in 4 KiB refills rather than 16 bytes
 * per id: one getrandom() costs microseconds on a virtual machine, more
 * than the rest of a bulk-imported record's save (two ids each).  UUIDs
 * are public identifiers, not secrets, so keeping their randomness in
 * memory for a while is harmless.  A child after fork() must never reuse
 * the parent's pool (it would make the parent's next ids), so fork empties
 * it in the child.  Guarded by lock.
 */
static unsigned char pool[4096];
static size_t pool_left;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void
pool_forget(void)
{
	pool_left = 0;
}

static void
pool_init(void)
{
	pthread_atfork(NULL, NULL, pool_forget);
}

/* 16 random bytes from the pool; called with lock held. */
static void
pool_take(unsigned char out[16])
{
	if (pool_left < 16) {
		gs_random(pool, sizeof(pool));
		pool_left = sizeof(pool);
	}
	memcpy(out, pool + sizeof(pool) - pool_left, 16);
	pool_left -= 16;
}

void
gs_uuid_v7_bytes(unsigned char out[16])
{
	int64_t ms = gs_now_ms();
	uint16_t seq;
	int i;

	pthread_once(&pool_once, pool_init);
	/*
	 * RFC 9562 method 1: the 12-bit rand_a field is a counter within a
	 * millisecond, seeded randomly in its lower half so that ids from
	 * one device stay ordered even in bulk imports.
	 */
	pthread_mutex_lock(&lock);
	pool_take(out);
	if (ms <= last_ms) {
		ms = last_ms;
		if (++last_seq > 0x0fff) {
			ms = ++last_ms;
			last_seq = (uint16_t)(out[6] & 0x03);
		}
	} else {
		last_ms = ms;
		last_seq = (uint16_t)(((out[6] << 8) | out[7]) & 0x01ff);
	}
	seq = last_seq;
	pthread_mutex_unlock(&lock);

	for (i = 0; i < 6; i++)
		out[i] = (unsigned char)((uint64_t)ms >> (8 * (5 - i)));
	out[6] = (unsigned char)(0x70 | ((seq >> 8) & 0x0f));
	out[7] = (unsigned char)seq;
	out[8] = (unsigned char)(0x80 | (out[8] & 0x3f));
}

void
gs_uuid_format(char out[GS_UUID_LEN + 1], const unsigned char in[16])
{
	char hex[33];

	gs_hex_encode(hex, in, 16);
	memcpy(out, hex, 8);
	out[8] = '-';
	memcpy(out + 9, hex + 8, 4);
	out[13] = '-';
	memcpy(out + 14, hex + 12, 4);
	out[18] = '-';
	memcpy(out + 19, hex + 16, 4);
	out[23] = '-';
	memcpy(out + 24, hex + 20, 12);
	out[36] = '\0';
}

void
gs_uuid_v7(char out[GS_UUID_LEN + 1])
{
	unsigned char b[16];

	gs_uuid_v7_bytes(b);
	gs_uuid_format(out, b);
}

int
gs_uuid_parse(const char *s, unsigned char out[16])
{
	char hex[33];
	size_t i, j = 0;

	if (strlen(s) != GS_UUID_LEN)
		return GS_EINVAL;
	for (i = 0; i < GS_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return GS_EINVAL;
			continue;
		}
		hex[j++] = s[i];
	}
	hex[j] = '\0';
	return gs_hex_decode(out, 16, hex) == GS_OK ? GS_OK : GS_EINVAL;
}
