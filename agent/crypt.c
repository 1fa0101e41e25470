/*
 * crypt.c - sealing a record's pii fields under the DEK, the blind index,
 * and display masks (the format is described in crypt.h).
 *
 * Plaintext hygiene: the pii JSON is encoded into, and decoded from, a
 * buffer that is wiped before it is freed; error messages name the record
 * uuid and never a value.  The DEK and the index subkey live in one
 * sodium_malloc region for the life of the sealer.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypt.h"
#include "crypto.h"
#include "json.h"
#include "schema.h"
#include "core/banned.h"

/* Encoded pii of one record above this is refused (a record is at most
 * 1 MiB of JSON, so this is never reached by valid input). */
#define PII_MAX (2u << 20)
/* At most this many pii members in one record (a form has at most 128
 * fields, sync/schema-priv.h); more is refused. */
#define PII_MAX_KEYS AG_PII_MAX_KEYS

/*
 * keys (secure memory): DEK(32) || index subkey(32) || nonce prefix(16) ||
 * the HChaCha20 subkey of (DEK, prefix)(32); ctr the nonce counter.  A
 * sealed record's nonce is prefix || counter++ (le64): the prefix is
 * random per sealer (per process), so two sealers collide with
 * probability 2^-128 per pair, and within one the counter never repeats
 * (it is 64 bits wide and only ever incremented).  This saves a
 * getrandom() system call per record (2-5 us on this VM, more than the
 * encryption itself); and since every nonce of this sealer starts with
 * the same 16 bytes, XChaCha20's HChaCha20 step is done once here, not
 * per record (gs_crypto_xaead_encrypt: the same bytes out).
 */
struct ag_crypt {
	unsigned char *keys;
	/* The nonce counter (not a secret): atomic, because a bulk
	 * import seals on several reader threads at once (agent/store.c),
	 * and a nonce used twice under one key would undo the cipher. */
	_Atomic uint64_t ctr;
	/*
	 * Opening: the nonce prefix of the last box opened and its
	 * HChaCha20 subkey (after SUBKEY in keys; open_have: they are set).
	 * Every box one sealer made shares its prefix, so a sync opening
	 * the records one collect sealed derives the subkey once, not once
	 * a record (1.1k of 9k instructions an opening).  The stored format
	 * is as it was: a box of another prefix derives its own.  The lock
	 * keeps two openers on different threads from mixing the two.
	 */
	pthread_mutex_t open_lock;
	int open_have;
};

#define IDX_KEY(c) ((c)->keys + AG_DEK_BYTES)
#define NONCE_PREFIX(c) ((c)->keys + 2 * AG_DEK_BYTES)
#define SUBKEY(c) ((c)->keys + 2 * AG_DEK_BYTES + 16)
#define OPEN_PREFIX(c) ((c)->keys + 3 * AG_DEK_BYTES + 16)
#define OPEN_SUBKEY(c) ((c)->keys + 3 * AG_DEK_BYTES + 32)
#define KEYS_BYTES (4 * AG_DEK_BYTES + 32)

int
ag_crypt_new(const unsigned char dek[AG_DEK_BYTES], struct ag_crypt **out)
{
	static const char ctx[] = "gridsync pii blind index v1";
	struct ag_crypt *c;

	*out = NULL;
	if ((c = gs_calloc(1, sizeof(*c))) == NULL ||
	    (c->keys = gs_crypto_secure_alloc(KEYS_BYTES)) == NULL) {
		gs_free(c);
		return GS_FAIL(GS_ENOMEM, "crypt: out of secure memory");
	}
	memcpy(c->keys, dek, AG_DEK_BYTES);
	/* A separate key for the index, so that index tags and field
	 * ciphertexts never share a key (KDF = keyed BLAKE2b). */
	gs_crypto_hash(IDX_KEY(c), AG_DEK_BYTES, ctx, sizeof(ctx) - 1, dek,
	    AG_DEK_BYTES);
	gs_random(NONCE_PREFIX(c), 16);
	gs_crypto_xaead_subkey(SUBKEY(c), dek, NONCE_PREFIX(c));
	atomic_init(&c->ctr, 0);
	if (pthread_mutex_init(&c->open_lock, NULL) != 0) {
		gs_crypto_secure_free(c->keys);
		gs_free(c);
		return GS_FAIL(GS_ENOMEM, "crypt: no lock");
	}
	c->open_have = 0;
	*out = c;
	return GS_OK;
}

void
ag_crypt_free(struct ag_crypt *c)
{
	if (c == NULL)
		return;
	gs_crypto_secure_free(c->keys); /* zeroes first */
	pthread_mutex_destroy(&c->open_lock);
	gs_free(c);
}

const unsigned char *
ag_crypt_dek(const struct ag_crypt *c)
{
	return c->keys;
}

/* ad = "gs-pii-v1" 0 uuid 0 form_version(le32); returns its length. */
static size_t
make_ad(unsigned char ad[64], const char *uuid, int form_version)
{
	static const char tag[] = "gs-pii-v1";
	size_t n = 0, ul = strlen(uuid);

	if (ul > 40)
		ul = 40; /* uuids are 36; longer input is cut, never overrun */
	memcpy(ad, tag, sizeof(tag)); /* with its NUL */
	n = sizeof(tag);
	memcpy(ad + n, uuid, ul);
	n += ul;
	ad[n++] = 0;
	gs_put_le32(ad + n, (uint32_t)form_version);
	return n + 4;
}

/*
 * Base64 (URL-safe alphabet, no padding: the same text as
 * gs_crypto_b64_encode) of a sealed box.  The box is ciphertext, not a
 * secret, so a table lookup is fine here; libsodium's constant-time
 * codec, meant for keys, cost more than the encryption itself (16k of
 * 60k instructions per sealed record).  Writes GS_B64_LEN(n) bytes with
 * the NUL; returns the length.
 */
static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The two characters of every 12 bits: three bytes in two lookups. */
static char b64_pair[4096][2];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void
b64_pair_init(void)
{
	int v;

	for (v = 0; v < 4096; v++) {
		b64_pair[v][0] = B64[v >> 6];
		b64_pair[v][1] = B64[v & 63];
	}
}

size_t
ag_crypt_b64_encode(char *out, const unsigned char *in, size_t n)
{
	size_t i, o = 0;

	(void)pthread_once(&b64_once, b64_pair_init);
	/* Six bytes (48 bits, four lookups) from one 8-byte load while 8
	 * are there to load; then three at a time. */
	for (i = 0; i + 8 <= n; i += 6, o += 8) {
		uint64_t v;

		memcpy(&v, in + i, 8);
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
		v = __builtin_bswap64(v);
#endif
		memcpy(out + o, b64_pair[v >> 52], 2);
		memcpy(out + o + 2, b64_pair[(v >> 40) & 4095], 2);
		memcpy(out + o + 4, b64_pair[(v >> 28) & 4095], 2);
		memcpy(out + o + 6, b64_pair[(v >> 16) & 4095], 2);
	}
	for (; i + 3 <= n; i += 3, o += 4) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];

		memcpy(out + o, b64_pair[v >> 12], 2);
		memcpy(out + o + 2, b64_pair[v & 4095], 2);
	}
	if (n - i == 1) {
		out[o++] = B64[in[i] >> 2];
		out[o++] = B64[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		out[o++] = B64[v >> 10];
		out[o++] = B64[(v >> 4) & 63];
		out[o++] = B64[(v & 15) << 2];
	}
	out[o] = '\0';
	return o;
}

/*
 * The value of each base64 character (RFC 4648 section 5, the URL-safe
 * alphabet) already shifted to its place in a group of four: b64_dec[k][ch]
 * is its 6 bits << (18 - 6k), or B64_BAD for a byte outside the alphabet.
 * A group is then four lookups OR'ed, one test and three bytes out.
 */
#define B64_BAD 0x80000000u
static uint32_t b64_dec[4][256];
static pthread_once_t b64_dec_once = PTHREAD_ONCE_INIT;

static void
b64_dec_init(void)
{
	int k, ch;

	for (k = 0; k < 4; k++)
		for (ch = 0; ch < 256; ch++)
			b64_dec[k][ch] = B64_BAD;
	for (ch = 0; ch < 64; ch++)
		for (k = 0; k < 4; k++)
			b64_dec[k][(unsigned char)B64[ch]] =
			    (uint32_t)ch << (18 - 6 * k);
}

/*
 * Decodes what ag_crypt_b64_encode wrote, as strictly as libsodium's
 * decoder (gs_crypto_b64_decode): every character of the alphabet, no
 * padding, no lone last character, unused bits zero.  GS_OK and *outlen,
 * GS_ETOOBIG when it cannot fit in outmax, GS_EPARSE otherwise.  Four
 * characters at a time by table: it opens every sealed record put in a
 * batch (a bit-at-a-time loop was 4% of a sync).
 */
int
ag_crypt_b64_decode(unsigned char *out, size_t outmax, size_t *outlen,
    const char *in, size_t inlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i, o = 0, need, whole = inlen / 4 * 4;
	uint32_t a;

	if (inlen % 4 == 1)
		return GS_EPARSE;
	need = inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0);
	if (need > outmax)
		return GS_ETOOBIG;
	(void)pthread_once(&b64_dec_once, b64_dec_init);
	for (i = 0; i < whole; i += 4, o += 3) {
		a = b64_dec[0][p[i]] | b64_dec[1][p[i + 1]] |
		    b64_dec[2][p[i + 2]] | b64_dec[3][p[i + 3]];
		if (a & B64_BAD)
			return GS_EPARSE;
		out[o] = (unsigned char)(a >> 16);
		out[o + 1] = (unsigned char)(a >> 8);
		out[o + 2] = (unsigned char)a;
	}
	if (inlen - whole >= 2) {
		/* Two characters carry one byte and four unused bits, three
		 * carry two bytes and two unused bits: they must be zero. */
		a = b64_dec[0][p[i]] | b64_dec[1][p[i + 1]] |
		    (inlen - whole == 3 ? b64_dec[2][p[i + 2]] : 0);
		if (a & B64_BAD)
			return GS_EPARSE;
		out[o++] = (unsigned char)(a >> 16);
		if (inlen - whole == 3)
			out[o++] = (unsigned char)(a >> 8);
		if ((inlen - whole == 2 ? a & 0xffff : a & 0xff) != 0)
			return GS_EPARSE; /* not canonical */
	}
	*outlen = o;
	return GS_OK;
}

/*
 * A form's pii field names in an open-addressing table (at most a quarter
 * full), hashed by their length and first, middle and last bytes (the
 * whole name is compared on a hit, so the hash only has to spread them):
 * is a key pii, in a few instructions and at most one compare, where
 * gs_form_field's binary search costs about five string compares (2.6k
 * instructions per bulk-imported person).  Also the form's pii id-number
 * fields, for the blind index.
 */
#define PLAN_IDCARDS 8

struct ag_pii_plan {
	const struct gs_form *f;
	size_t mask;                   /* slots - 1 */
	struct plan_slot {
		const char *name;      /* NULL: empty */
		size_t len;
		uint32_t h;
	} *slot;
	size_t nidcard;
	const char *idcard[PLAN_IDCARDS];
};

static uint32_t
key_hash(const char *s, size_t n)
{
	uint32_t h;

	if (n == 0)
		return 0;
	h = (uint32_t)n;
	h = h * 31 + (unsigned char)s[0];
	h = h * 31 + (unsigned char)s[n / 2];
	h = h * 31 + (unsigned char)s[n - 1];
	h *= 2654435761u;
	return h ^ (h >> 15);
}

int
ag_crypt_plan_new(const struct gs_form *f, struct ag_pii_plan **out)
{
	struct ag_pii_plan *p = NULL;
	size_t i, nslots = 16, n = gs_form_nfields(f);

	*out = NULL;
	while (nslots < 4 * n)
		nslots *= 2;
	if ((p = gs_calloc(1, sizeof(*p))) == NULL ||
	    (p->slot = gs_calloc(nslots, sizeof(*p->slot))) == NULL) {
		gs_free(p);
		return GS_FAIL(GS_ENOMEM, "crypt: out of memory");
	}
	p->f = f;
	p->mask = nslots - 1;
	for (i = 0; i < n; i++) {
		const struct gs_field *fd = gs_form_field_at(f, i);
		const char *name = gs_field_name(fd);
		size_t len = strlen(name), k;
		uint32_t h = key_hash(name, len);

		if (!gs_field_pii(fd))
			continue;
		if (gs_field_kind(fd) == GS_KIND_IDCARD &&
		    p->nidcard < PLAN_IDCARDS)
			p->idcard[p->nidcard++] = name;
		for (k = h & p->mask; p->slot[k].name != NULL;
		    k = (k + 1) & p->mask)
			;
		p->slot[k].name = name;
		p->slot[k].len = len;
		p->slot[k].h = h;
	}
	*out = p;
	return GS_OK;
}

void
ag_crypt_plan_free(struct ag_pii_plan *p)
{
	if (p == NULL)
		return;
	gs_free(p->slot);
	gs_free(p);
}

int
ag_crypt_plan_is_pii(const struct ag_pii_plan *p, const char *key,
    size_t len)
{
	uint32_t h = key_hash(key, len);
	size_t k;

	for (k = h & p->mask; p->slot[k].name != NULL; k = (k + 1) & p->mask)
		if (p->slot[k].h == h && p->slot[k].len == len &&
		    memcmp(p->slot[k].name, key, len) == 0)
			return 1;
	return 0;
}

const char *
ag_crypt_plan_idcard(const struct ag_pii_plan *p, size_t i)
{
	return i < p->nidcard ? p->idcard[i] : NULL;
}

/* Whether the member key (len bytes) of a record of f is pii. */
static int
is_pii(const struct gs_form *f, const struct ag_pii_plan *plan,
    const char *key, size_t len)
{
	const struct gs_field *fd;

	if (plan != NULL)
		return ag_crypt_plan_is_pii(plan, key, len);
	fd = strlen(key) == len ? gs_form_field(f, key) : NULL;
	return fd != NULL && gs_field_pii(fd);
}

/*
 * The compact JSON of a record's pii members into out (cap bytes), the way
 * json_dumpb would write the object of those members in their order in
 * fields: returns the length it needs, and writes it only when it fits.
 * Strings, the common case, are written directly (about five times
 * cheaper than jansson's callback encoder); anything else goes through
 * json_dumpb.  The pii members' keys go into keys[] (*nkeys of them, at
 * most PII_MAX_KEYS, else 0 is returned).
 */
#define PUT(ch)                                                                \
	do {                                                                   \
		if (o < cap)                                                   \
			out[o] = (unsigned char)(ch);                          \
		o++;                                                           \
	} while (0)

/* 1 for the bytes a JSON string must escape: controls, '"' and '\\'. */
static const unsigned char needs_esc[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	['"'] = 1, ['\\'] = 1,
};

static size_t
put_str(unsigned char *out, size_t cap, size_t o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run;

	PUT('"');
	for (i = 0; i < n; i = run) {
		unsigned char ch;

		/* A run with nothing to escape goes in with one copy. */
		for (run = i; run < n && !needs_esc[(unsigned char)s[run]];
		    run++)
			;
		if (run > i) {
			if (o + (run - i) <= cap)
				memcpy(out + o, s + i, run - i);
			o += run - i;
			continue;
		}
		ch = (unsigned char)s[run++];
		PUT('\\');
		if (ch == '"' || ch == '\\') {
			PUT(ch);
		} else {
			PUT('u');
			PUT('0');
			PUT('0');
			PUT(hex[ch >> 4]);
			PUT(hex[ch & 15]);
		}
	}
	PUT('"');
	return o;
}

static size_t
encode_pii(const struct gs_form *f, const struct ag_pii_plan *plan,
    const json_t *fields, unsigned char *out, size_t cap, const char **keys,
    size_t *nkeys)
{
	const char *k;
	json_t *v;
	size_t o = 0, kl;

	*nkeys = 0;
	PUT('{');
	json_object_keylen_foreach((json_t *)fields, k, kl, v) {
		/* A null member is absent (stored records hold none; the bulk
		 * import's objects still do: agent/store.c put_stored). */
		if (json_is_null(v) || !is_pii(f, plan, k, kl))
			continue;
		if (*nkeys == PII_MAX_KEYS)
			return 0;
		keys[(*nkeys)++] = k;
		if (o > 1)
			PUT(',');
		o = put_str(out, cap, o, k, kl);
		PUT(':');
		if (json_is_string(v)) {
			o = put_str(out, cap, o, json_string_value(v),
			    json_string_length(v));
		} else {
			size_t n = json_dumpb(v, o < cap ? (char *)out + o :
			    NULL, o < cap ? cap - o : 0,
			    JSON_COMPACT | JSON_ENCODE_ANY);

			if (n == 0)
				return 0;
			o += n;
		}
	}
	PUT('}');
	return o;
}
#undef PUT

int
ag_crypt_is_sealed(const json_t *fields)
{
	return json_object_get(fields, AG_PII_MEMBER) != NULL;
}

/*
 * The sealed box and its base64 text fit these for any person or house
 * (a few hundred bytes of pii); larger records take the heap.
 */
#define SEAL_STACK 4096

/*
 * The box of plain[0..n) (box: GS_AEAD_NONCEBYTES + n + GS_AEAD_TAGBYTES
 * bytes) under the next nonce, and its base64 into text
 * (GS_B64_LEN of the box's length), *tlen its length.
 */
static int
encrypt_box(const struct ag_crypt *c, const char *uuid, int form_version,
    const unsigned char *plain, size_t n, unsigned char *box, char *text,
    size_t *tlen)
{
	unsigned char ad[64];
	size_t adlen;
	int r;

	{
		/* ag_crypt is const to its users: sealing changes nothing
		 * but this counter. */
		uint64_t n64 = atomic_fetch_add(
		    &((struct ag_crypt *)c)->ctr, 1);

		memcpy(box, NONCE_PREFIX(c), 16);
		gs_put_le64(box + 16, n64);
	}
	adlen = make_ad(ad, uuid, form_version);
	if ((r = gs_crypto_xaead_encrypt(box + GS_AEAD_NONCEBYTES, plain, n,
	    ad, adlen, box + 16, SUBKEY(c))) != GS_OK)
		return r;
	*tlen = ag_crypt_b64_encode(text, box,
	    GS_AEAD_NONCEBYTES + n + GS_AEAD_TAGBYTES);
	return GS_OK;
}

/*
 * Seals the pii members of fields (their keys into keys[], *nkeys).  out
 * NULL: into fields (ag_crypt_seal); else the base64 of the box is
 * appended to out and fields is left as it is (ag_crypt_seal_text).
 */
static int
seal(const struct ag_crypt *c, const struct gs_form *f,
    const struct ag_pii_plan *plan, const char *uuid, int form_version,
    json_t *fields, struct gs_buf *out, const char **keys, size_t *nkeys)
{
	unsigned char stackbuf[SEAL_STACK], stackbox[SEAL_STACK];
	unsigned char *plain = stackbuf, *box = stackbox;
	char stacktext[GS_B64_LEN(SEAL_STACK)], *text = stacktext;
	json_t *sv = NULL;
	size_t n = 0, boxlen, tlen, cap = sizeof(stackbuf), i;
	int r = GS_EINTERNAL;

	*nkeys = 0;
	if (ag_crypt_is_sealed(fields))
		return GS_FAIL(GS_EINVAL, "record %s: already sealed", uuid);
	/* The plaintext straight from fields: no object of the pii members
	 * is built (that, its frees and the members' moves cost more than
	 * the encryption). */
	n = encode_pii(f, plan, fields, plain, cap, keys, nkeys);
	if (n > 0 && *nkeys == 0) {
		r = GS_OK; /* nothing to seal */
		goto out;
	}
	if (n > cap) {
		if (n > PII_MAX) {
			r = GS_FAIL(GS_ETOOBIG, "record %s: personal data "
			    "over %u bytes", uuid, PII_MAX);
			goto out;
		}
		/* Part of it is on the stack already: wipe it. */
		gs_crypto_memzero(stackbuf, sizeof(stackbuf));
		cap = n;
		if ((plain = gs_malloc(cap)) == NULL) {
			r = GS_FAIL(GS_ENOMEM, "seal: out of memory");
			goto out;
		}
		n = encode_pii(f, plan, fields, plain, cap, keys, nkeys);
	}
	if (n == 0 || n > cap) {
		r = GS_FAIL(GS_ENOMEM, "seal: cannot encode record %s", uuid);
		goto out;
	}
	boxlen = GS_AEAD_NONCEBYTES + n + GS_AEAD_TAGBYTES;
	if (boxlen > sizeof(stackbox) &&
	    ((box = gs_malloc(boxlen)) == NULL ||
	    (out == NULL && (text = gs_malloc(GS_B64_LEN(boxlen))) == NULL))) {
		r = GS_FAIL(GS_ENOMEM, "seal: out of memory");
		goto out;
	}
	if (out != NULL) {
		/* The text goes straight into out. */
		if ((r = gs_buf_reserve(out, GS_B64_LEN(boxlen))) != GS_OK) {
			r = GS_FAIL(r, "seal: out of memory");
			goto out;
		}
		text = out->data + out->len;
	}
	if ((r = encrypt_box(c, uuid, form_version, plain, n, box, text,
	    &tlen)) != GS_OK)
		goto out;
	if (out != NULL) {
		out->len += tlen;
		r = GS_OK;
		goto out;
	}
	/* nocheck: base64 is ASCII, no need to check it is UTF-8.  The
	 * sealed member goes in first: if that fails, fields is as it was;
	 * deleting the plain members then cannot fail (the keys stay valid
	 * until their own member is deleted). */
	if ((sv = json_stringn_nocheck(text, tlen)) == NULL ||
	    json_object_set_new(fields, AG_PII_MEMBER, sv) != 0) {
		r = GS_FAIL(GS_ENOMEM, "seal: out of memory");
		goto out;
	}
	for (i = 0; i < *nkeys; i++)
		(void)json_object_del(fields, keys[i]);
	r = GS_OK;
out:
	/* encode_pii writes at most min(n, cap) bytes (all of cap when it
	 * failed, n = 0): wiping only those saves a 4 KiB memset per
	 * record. */
	gs_crypto_memzero(plain, n > 0 && n < cap ? n : cap);
	if (plain != stackbuf)
		gs_free(plain);
	if (box != stackbox)
		gs_free(box);
	if (out == NULL && text != stacktext)
		gs_free(text);
	if (r != GS_OK)
		*nkeys = 0;
	return r;
}

int
ag_crypt_seal(const struct ag_crypt *c, const struct gs_form *f,
    const char *uuid, int form_version, json_t *fields)
{
	const char *keys[PII_MAX_KEYS];
	size_t nkeys;

	return seal(c, f, NULL, uuid, form_version, fields, NULL, keys, &nkeys);
}

int
ag_crypt_seal_text(const struct ag_crypt *c, const struct gs_form *f,
    const struct ag_pii_plan *plan, const char *uuid, int form_version,
    const json_t *fields, struct gs_buf *out,
    const char *keys[AG_PII_MAX_KEYS], size_t *nkeys)
{
	/* A plan of another form would misjudge which members are pii. */
	if (plan != NULL && plan->f != f)
		return GS_FAIL(GS_EINTERNAL, "seal: plan of another form");
	return seal(c, f, plan, uuid, form_version, (json_t *)fields, out,
	    keys, nkeys);
}

int
ag_crypt_seal_spans(const struct ag_crypt *c, const char *uuid,
    int form_version, const struct gs_json_span *const *pm, size_t n,
    struct gs_buf *out)
{
	unsigned char stackbuf[SEAL_STACK], stackbox[SEAL_STACK];
	unsigned char *plain = stackbuf, *box = stackbox;
	size_t need = 2, i, o = 0, len, boxlen, tlen;
	int r;

	if (n == 0)
		return GS_FAIL(GS_EINTERNAL, "record %s: no member to seal",
		    uuid);
	/* Each member is "key":value, quotes included: in the text, but
	 * for a value normalized elsewhere (gs_record_validate_spans_norm). */
	for (i = 0; i < n; i++)
		need += pm[i]->klen + 3 + pm[i]->vlen + (i > 0);
	if (need > PII_MAX)
		return GS_FAIL(GS_ETOOBIG, "record %s: personal data over %u "
		    "bytes", uuid, PII_MAX);
	boxlen = GS_AEAD_NONCEBYTES + need + GS_AEAD_TAGBYTES;
	if ((need > sizeof(stackbuf) && (plain = gs_malloc(need)) == NULL) ||
	    (boxlen > sizeof(stackbox) && (box = gs_malloc(boxlen)) == NULL)) {
		r = GS_FAIL(GS_ENOMEM, "seal: out of memory");
		goto out;
	}
	/* encode_pii's text of the same members: the plaintext is the
	 * members' own spelling, copied, with no scan for escapes (a plain
	 * string has none to make). */
	plain[o++] = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			plain[o++] = ',';
		if (pm[i]->val == pm[i]->key + pm[i]->klen + 2) {
			len = (size_t)(pm[i]->val + pm[i]->vlen - pm[i]->key) +
			    1;
			memcpy(plain + o, pm[i]->key - 1, len);
			o += len;
		} else {
			memcpy(plain + o, pm[i]->key - 1, pm[i]->klen + 3);
			o += pm[i]->klen + 3;
			memcpy(plain + o, pm[i]->val, pm[i]->vlen);
			o += pm[i]->vlen;
		}
	}
	plain[o++] = '}';
	if ((r = gs_buf_reserve(out, GS_B64_LEN(boxlen))) != GS_OK) {
		r = GS_FAIL(r, "seal: out of memory");
		goto out;
	}
	if ((r = encrypt_box(c, uuid, form_version, plain, need, box,
	    out->data + out->len, &tlen)) != GS_OK)
		goto out;
	out->len += tlen;
out:
	if (plain != NULL)
		gs_crypto_memzero(plain, o);
	if (plain != stackbuf)
		gs_free(plain);
	if (box != stackbox)
		gs_free(box);
	return r;
}

int
ag_crypt_open_text(const struct ag_crypt *c, const char *uuid,
    int form_version, const char *s, size_t slen, struct gs_buf *out)
{
	struct ag_crypt *cw = (struct ag_crypt *)c; /* the opening cache */
	unsigned char ad[64], stackbox[SEAL_STACK];
	unsigned char *box = stackbox;
	size_t boxlen = 0, n, adlen, room = slen / 4 * 3 + 3;
	int r = GS_EINTERNAL;

	if (c == NULL)
		return GS_FAIL(GS_EPERM, "locked: run gridagent unlock");
	/* The box is ciphertext: a person's fits on the stack, and needs
	 * no wipe. */
	if (slen > GS_B64_LEN(PII_MAX) ||
	    (room > sizeof(stackbox) && (box = gs_malloc(room)) == NULL)) {
		r = GS_FAIL(slen > GS_B64_LEN(PII_MAX) ? GS_ECORRUPT :
		    GS_ENOMEM, "record %s: cannot read sealed data", uuid);
		goto out;
	}
	if (ag_crypt_b64_decode(box, room, &boxlen, s, slen)
	    != GS_OK || boxlen < GS_AEAD_NONCEBYTES + GS_AEAD_TAGBYTES + 2) {
		r = GS_FAIL(GS_ECORRUPT, "record %s: sealed data is "
		    "malformed", uuid);
		goto out;
	}
	n = boxlen - GS_AEAD_NONCEBYTES - GS_AEAD_TAGBYTES;
	out->len = 0;
	if ((r = gs_buf_reserve(out, n)) != GS_OK) {
		r = GS_FAIL(r, "record %s: no room to open its sealed data",
		    uuid);
		goto out;
	}
	adlen = make_ad(ad, uuid, form_version);
	/* XChaCha20-Poly1305 in its two steps (crypto.h), the first one
	 * done again only for a box of another sealer (struct ag_crypt). */
	pthread_mutex_lock(&cw->open_lock);
	if (!cw->open_have || memcmp(OPEN_PREFIX(c), box, 16) != 0) {
		memcpy(OPEN_PREFIX(c), box, 16);
		gs_crypto_xaead_subkey(OPEN_SUBKEY(c), c->keys, box);
		cw->open_have = 1;
	}
	r = gs_crypto_xaead_decrypt((unsigned char *)out->data,
	    box + GS_AEAD_NONCEBYTES, boxlen - GS_AEAD_NONCEBYTES, ad, adlen,
	    box + 16, OPEN_SUBKEY(c));
	pthread_mutex_unlock(&cw->open_lock);
	if (r != GS_OK) {
		r = GS_FAIL(GS_EDECRYPT, "record %s: its personal data does "
		    "not open (moved from another record, damaged, or sealed "
		    "under another key)", uuid);
		goto out;
	}
	out->len = n;
	r = GS_OK;
out:
	if (box != stackbox)
		gs_free(box);
	return r;
}

int
ag_crypt_open(const struct ag_crypt *c, const char *uuid, int form_version,
    json_t *fields)
{
	json_t *sv = json_object_get(fields, AG_PII_MEMBER), *p = NULL;
	struct gs_buf plain;
	char why[128];
	int r = GS_EINTERNAL;

	if (sv == NULL)
		return GS_OK;
	if (c == NULL)
		return GS_FAIL(GS_EPERM, "locked: run gridagent unlock");
	if (!json_is_string(sv))
		return GS_FAIL(GS_ECORRUPT, "record %s: sealed data is not "
		    "text", uuid);
	gs_buf_init_secret(&plain, PII_MAX);
	if ((r = ag_crypt_open_text(c, uuid, form_version,
	    json_string_value(sv), json_string_length(sv), &plain)) != GS_OK)
		goto out;
	/* sync/json.c: what json_loadb(JSON_REJECT_DUPLICATES) accepts, at
	 * a fraction of its cost (this is opened for every record sealed
	 * into a batch). */
	r = gs_json_parse(plain.data, plain.len, &p, why, sizeof(why));
	if (r == GS_ENOMEM) {
		r = GS_FAIL(GS_ENOMEM, "open: out of memory");
		goto out;
	}
	if (r != GS_OK || !json_is_object(p)) {
		r = GS_FAIL(GS_ECORRUPT, "record %s: sealed data is not a "
		    "JSON object", uuid);
		goto out;
	}
	json_object_del(fields, AG_PII_MEMBER);
	if (json_object_update(fields, p) != 0) {
		r = GS_FAIL(GS_ENOMEM, "open: out of memory");
		goto out;
	}
	r = GS_OK;
out:
	gs_buf_release(&plain);
	json_decref(p);
	return r;
}

int
ag_crypt_bidx(const struct ag_crypt *c, const char *value,
    unsigned char tag[AG_BIDX_BYTES])
{
	return ag_crypt_bidxn(c, value, strlen(value), tag);
}

int
ag_crypt_bidxn(const struct ag_crypt *c, const char *value, size_t len,
    unsigned char tag[AG_BIDX_BYTES])
{
	char norm[72];
	size_t n = 0, i;

	memcpy(norm, "idcard", 7); /* with its NUL: a domain separator */
	n = 7;
	for (i = 0; i < len && value[i] != '\0'; i++) {
		char ch = value[i];

		if (ch == ' ' || ch == '-' || ch == '\t')
			continue;
		if (ch == 'x')
			ch = 'X';
		if (n >= sizeof(norm))
			return GS_FAIL(GS_EINVAL, "id number is too long");
		norm[n++] = ch;
	}
	if (n == 7)
		return GS_FAIL(GS_EINVAL, "empty id number");
	gs_crypto_hash(tag, AG_BIDX_BYTES, norm, n, IDX_KEY(c), AG_DEK_BYTES);
	gs_crypto_memzero(norm, sizeof(norm));
	return GS_OK;
}

/* ------------------------------------------------------------ masks */

/* The byte length of the UTF-8 character at s (1 for a stray byte). */
static size_t
utf8_len(const unsigned char *s)
{
	if (s[0] >= 0xf0 && s[1] && s[2] && s[3])
		return 4;
	if (s[0] >= 0xe0 && s[1] && s[2])
		return 3;
	if (s[0] >= 0xc0 && s[1])
		return 2;
	return 1;
}

static size_t
utf8_count(const char *s)
{
	size_t n = 0;

	while (*s != '\0') {
		s += utf8_len((const unsigned char *)s);
		n++;
	}
	return n;
}

static int
is_name_field(const char *field)
{
	size_t n = strlen(field);

	return n >= 4 && strcmp(field + n - 4, "name") == 0;
}

char *
ag_crypt_mask_text(const struct gs_form *f, const char *field,
    const char *value)
{
	const struct gs_field *fd = f != NULL ? gs_form_field(f, field) : NULL;
	enum gs_kind kind = fd != NULL ? gs_field_kind(fd) : GS_KIND_TEXT;
	size_t len = strlen(value), i, keep_head = 0, keep_tail = 0;
	size_t cap = len * 3 + 16, o = 0;
	char *out;

	if ((out = gs_malloc(cap)) == NULL)
		return NULL;
	switch (kind) {
	case GS_KIND_IDCARD:
		if (len >= 10) {
			keep_head = 4;
			keep_tail = 4;
		}
		break;
	case GS_KIND_PHONE:
		if (len == 11 && value[0] == '1')
			keep_head = 3;
		if (len >= 8)
			keep_tail = 4;
		break;
	case GS_KIND_DATE:
		/* The year alone says an age bracket, not a person. */
		if (len == 10) {
			memcpy(out, value, 4);
			memcpy(out + 4, "-**-**", 7);
			return out;
		}
		break;
	case GS_KIND_TEXT:
		if (is_name_field(field) && len > 0) {
			/* 陈小明 -> 陈** : the family name stays. */
			size_t first = utf8_len((const unsigned char *)value);
			size_t rest = utf8_count(value + first);

			memcpy(out, value, first);
			o = first;
			for (i = 0; i < (rest ? rest : 1); i++)
				out[o++] = '*';
			out[o] = '\0';
			return out;
		}
		break;
	default:
		break;
	}
	if (keep_head == 0 && keep_tail == 0) {
		memcpy(out, "***", 4);
		return out;
	}
	memcpy(out, value, keep_head);
	o = keep_head;
	for (i = keep_head; i + keep_tail < len; i++)
		out[o++] = '*';
	memcpy(out + o, value + len - keep_tail, keep_tail);
	out[o + keep_tail] = '\0';
	return out;
}

int
ag_crypt_mask(const struct gs_form *f, json_t *fields)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(fields, tmp, k, v) {
		const struct gs_field *fd;
		json_t *m;
		char *t;

		if (strcmp(k, AG_PII_MEMBER) == 0) {
			m = json_string("[locked]");
		} else if ((fd = gs_form_field(f, k)) == NULL ||
		    !gs_field_pii(fd)) {
			continue;
		} else if (json_is_string(v)) {
			if ((t = ag_crypt_mask_text(f, k, json_string_value(v)))
			    == NULL)
				return GS_FAIL(GS_ENOMEM, "mask: out of memory");
			m = json_string(t);
			gs_free(t);
		} else {
			m = json_string("***");
		}
		if (m == NULL || json_object_set_new(fields, k, m) != 0)
			return GS_FAIL(GS_ENOMEM, "mask: out of memory");
	}
	return GS_OK;
}
