/*
 * enroll.c - one-time enrollment codes: made by an admin (CLI), redeemed
 * by a device (POST /v1/enroll).
 *
 * The token never crosses the wire: the device proves it knows the token
 * with a keyed BLAKE2b over its new identity (sync/enroll.h), and signs
 * the same message with its new key.  The platform keeps the token only
 * until the code is used or expires, then wipes it.  Every refusal looks
 * the same from outside (403 enrollment_refused) and is logged with the
 * client address; an address that fails too often is refused for a while
 * (429) before any lookup is made.
 */
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "batch.h"
#include "crypto.h"
#include "enroll.h"
#include "enrollment.h"
#include "envelope.h"
#include "store.h"
#include "core/banned.h"

json_t *
pf_limits_json(const struct pf_platform *pf)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:[i,i]}",
	    "max_envelope", (json_int_t)pf->limits.max_envelope,
	    "max_records", (json_int_t)pf->limits.max_records,
	    "max_plain", (json_int_t)pf->limits.max_plain,
	    "max_attachment", (json_int_t)pf->limits.max_attachment,
	    /* Batches of one device it takes at once (?follows=SEQ). */
	    "in_flight", (json_int_t)PF_IN_FLIGHT,
	    /* The envelope suites it opens (sync/envelope.h). */
	    "suites", GS_ENV_SUITE, GS_ENV_SUITE_PH);
}

/* A label an admin typed: non-empty, bounded, no control characters. */
static int
check_label(const char *what, const char *s, size_t max)
{
	size_t i, n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > max)
		return GS_FAIL(GS_EINVAL, "%s must be 1 to %zu bytes", what,
		    max);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return GS_FAIL(GS_EINVAL, "%s contains a control "
			    "character", what);
	return GS_OK;
}

int
pf_enroll_create(struct pf_platform *pf, const char *worker,
    const char *name, const char *grid, int64_t ttl, struct gs_buf *code)
{
	int r = GS_EINTERNAL;
	struct pf_token t;
	struct gs_enroll_code c;
	int64_t now = gs_now_ms();

	memset(&t, 0, sizeof(t));
	memset(&c, 0, sizeof(c));
	/* The worker id and grid code go into every change the device
	 * makes: they must pass the wire's rule, or the device enrolls and
	 * then can send nothing (its changes "cannot be sent", rejected on
	 * the handheld).  The name is only shown. */
	if ((r = gs_batch_check_label("--worker", worker,
	    GS_CHANGE_AUTHOR_MAX)) != GS_OK ||
	    (r = check_label("--name", name, sizeof(t.name) - 1)) != GS_OK ||
	    (r = gs_batch_check_label("--grid", grid, GS_CHANGE_GRID_MAX))
	    != GS_OK)
		return r;
	if (ttl < 1 || ttl > PF_ENROLL_TTL_MAX)
		return GS_FAIL(GS_EINVAL, "--ttl must be 1 to %d seconds",
		    PF_ENROLL_TTL_MAX);
	gs_random(t.token_id, sizeof(t.token_id));
	gs_random(t.token, sizeof(t.token));
	t.has_token = 1;
	gs_strlcpy(t.worker, worker, sizeof(t.worker));
	gs_strlcpy(t.name, name, sizeof(t.name));
	gs_strlcpy(t.grid, grid, sizeof(t.grid));
	t.created_at = now;
	t.expires_at = now + ttl * 1000;

	if (gs_strlcpy(c.url, pf->public_url, sizeof(c.url)) >= sizeof(c.url)) {
		r = GS_FAIL(GS_EINVAL, "public URL too long");
		goto out;
	}
	memcpy(c.token_id, t.token_id, sizeof(c.token_id));
	memcpy(c.token, t.token, sizeof(c.token));
	pf_platform_fingerprint(pf, c.fingerprint);
	/* Encode before storing: a code that cannot be printed must not
	 * leave a live token behind. */
	if ((r = gs_enroll_code_encode(code, &c)) != GS_OK)
		goto out;
	(void)pthread_mutex_lock(&pf->lock);
	/* Sweep: tokens that expired unused lose their secret now. */
	r = pf->store->ops->token_expire(pf->store, now);
	if (r == GS_OK)
		r = pf->store->ops->token_put(pf->store, &t);
	(void)pthread_mutex_unlock(&pf->lock);
out:
	gs_crypto_memzero(&t, sizeof(t));
	gs_enroll_code_wipe(&c);
	return r;
}

/* A hex string member of exactly n bytes. */
static int
get_hex(json_t *o, const char *key, unsigned char *out, size_t n)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != 2 * n || gs_hex_decode(out, n, s) != GS_OK)
		return GS_FAIL(GS_EPARSE, "%s: expected %zu hex digits", key,
		    2 * n);
	return GS_OK;
}

/*
 * The failed-attempt counter: a small fixed table keyed by address, so a
 * flood of addresses costs no memory (the oldest slot is reused).  Tokens
 * are 256-bit random, so this is not what keeps them from being guessed;
 * it keeps a prober from burning CPU and filling the log.
 */

/* 1 when ip failed too often in the current window. */
static int
rate_limited(struct pf_platform *pf, const char *ip)
{
	int64_t now = gs_now_ms();
	size_t i;
	int limited = 0;

	(void)pthread_mutex_lock(&pf->rate_lock);
	for (i = 0; i < PF_RATE_SLOTS; i++) {
		struct pf_rate_slot *s = &pf->rate[i];

		if (strcmp(s->ip, ip) != 0)
			continue;
		if (now - s->window_start > PF_ENROLL_FAIL_WINDOW_MS) {
			s->fails = 0;
			s->window_start = now;
		}
		limited = s->fails >= PF_ENROLL_FAIL_MAX;
		break;
	}
	(void)pthread_mutex_unlock(&pf->rate_lock);
	return limited;
}

static void
rate_fail(struct pf_platform *pf, const char *ip)
{
	int64_t now = gs_now_ms();
	size_t i, victim = 0;

	(void)pthread_mutex_lock(&pf->rate_lock);
	for (i = 0; i < PF_RATE_SLOTS; i++) {
		if (strcmp(pf->rate[i].ip, ip) == 0)
			break;
		/* Reuse the slot whose window is oldest. */
		if (pf->rate[i].window_start < pf->rate[victim].window_start)
			victim = i;
	}
	if (i == PF_RATE_SLOTS) {
		i = victim;
		gs_strlcpy(pf->rate[i].ip, ip, sizeof(pf->rate[i].ip));
		pf->rate[i].fails = 0;
		pf->rate[i].window_start = now;
	}
	if (now - pf->rate[i].window_start > PF_ENROLL_FAIL_WINDOW_MS) {
		pf->rate[i].fails = 0;
		pf->rate[i].window_start = now;
	}
	pf->rate[i].fails++;
	(void)pthread_mutex_unlock(&pf->rate_lock);
}

/* A success from ip forgets its failures: an operator who mistyped a few
 * codes is not locked out after getting one right. */
static void
rate_ok(struct pf_platform *pf, const char *ip)
{
	size_t i;

	(void)pthread_mutex_lock(&pf->rate_lock);
	for (i = 0; i < PF_RATE_SLOTS; i++)
		if (strcmp(pf->rate[i].ip, ip) == 0)
			pf->rate[i].fails = 0;
	(void)pthread_mutex_unlock(&pf->rate_lock);
}

int
pf_enroll_redeem(struct pf_platform *pf, const char *ip,
    const unsigned char *body, size_t len, json_t **answer)
{
	int r = GS_EINTERNAL;
	json_t *o = NULL;
	json_error_t jerr;
	unsigned char token_id[16], proof[GS_ENROLL_PROOF_BYTES];
	unsigned char sig[GS_SIGBYTES];
	struct pf_token t;
	struct pf_device d;
	const char *ver;
	char dep[33], devhex[33], bpk[65], rpk[65], kid[17], tid[33];
	int locked = 0, in_tx = 0;
	int64_t now = gs_now_ms();

	*answer = NULL;
	memset(&t, 0, sizeof(t));
	memset(&d, 0, sizeof(d));
	if (ip == NULL)
		ip = "?";
	if (rate_limited(pf, ip)) {
		gs_log(GS_LOG_WARNING, "enroll from %s refused: too many "
		    "failed attempts", ip);
		return GS_FAIL(GS_ERATELIMIT, "too many failed enrollment "
		    "attempts from this address; wait and retry");
	}
	if (body == NULL || len == 0 ||
	    (o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL || !json_is_object(o)) {
		r = GS_FAIL(GS_EPARSE, "enroll body is not a JSON object");
		goto fail;
	}
	if ((r = get_hex(o, "token_id", token_id, sizeof(token_id))) != GS_OK ||
	    (r = get_hex(o, "device_id", d.id, sizeof(d.id))) != GS_OK ||
	    (r = get_hex(o, "device_pk", d.pk, sizeof(d.pk))) != GS_OK ||
	    (r = get_hex(o, "proof", proof, sizeof(proof))) != GS_OK ||
	    (r = get_hex(o, "self_sig", sig, sizeof(sig))) != GS_OK)
		goto fail;
	/* Shown to admins (devices --json): plain text, and whole. */
	ver = json_string_value(json_object_get(o, "agent_version"));
	if (ver != NULL && *ver != '\0' && gs_batch_check_label(
	    "agent_version", ver, sizeof(d.agent_version) - 1) != GS_OK) {
		r = GS_FAIL(GS_EPARSE, "agent_version must be a short string "
		    "without control characters, quotes or backslashes");
		goto fail;
	}
	gs_strlcpy(d.agent_version, ver != NULL ? ver : "",
	    sizeof(d.agent_version));
	gs_hex_encode(tid, token_id, sizeof(token_id));

	/* The self-signature needs no secret: check it before the store. */
	if (gs_enroll_self_verify(sig, token_id, d.id, d.pk) != GS_OK) {
		r = GS_FAIL(GS_EAUTH, "self-signature does not verify");
		goto fail;
	}
	(void)pthread_mutex_lock(&pf->lock);
	locked = 1;
	if ((r = pf->store->ops->begin(pf->store)) != GS_OK)
		goto fail;
	in_tx = 1;
	r = pf->store->ops->token_get(pf->store, token_id, &t);
	if (r == GS_ENOTFOUND) {
		r = GS_FAIL(GS_EAUTH, "unknown token id %s", tid);
		goto fail;
	}
	if (r != GS_OK)
		goto fail;
	if (t.used_at != 0 || !t.has_token) {
		r = GS_FAIL(GS_EAUTH, "token %s already used", tid);
		goto fail;
	}
	if (t.expires_at <= now) {
		r = GS_FAIL(GS_EAUTH, "token %s expired", tid);
		/* Wipe it now rather than at the next sweep. */
		(void)pf->store->ops->token_expire(pf->store, now);
		(void)pf->store->ops->commit(pf->store);
		in_tx = 0;
		goto fail;
	}
	if (gs_enroll_proof_verify(proof, t.token, token_id, d.id, d.pk)
	    != GS_OK) {
		r = GS_FAIL(GS_EAUTH, "wrong proof for token %s", tid);
		goto fail;
	}
	gs_strlcpy(d.worker, t.worker, sizeof(d.worker));
	gs_strlcpy(d.name, t.name, sizeof(d.name));
	gs_strlcpy(d.grid, t.grid, sizeof(d.grid));
	memcpy(d.token_id, token_id, sizeof(d.token_id));
	d.enrolled_at = now;
	if ((r = pf->store->ops->token_redeem(pf->store, token_id, &d, now))
	    != GS_OK) {
		if (r == GS_EEXIST)
			r = GS_FAIL(GS_EEXIST, "device id already enrolled");
		goto fail;
	}
	if ((r = pf->store->ops->commit(pf->store)) != GS_OK)
		goto fail;
	in_tx = 0;
	(void)pthread_mutex_unlock(&pf->lock);
	locked = 0;

	gs_hex_encode(dep, pf->keys.deployment, sizeof(pf->keys.deployment));
	gs_hex_encode(devhex, d.id, sizeof(d.id));
	gs_hex_encode(bpk, pf->keys.batch_pk, sizeof(pf->keys.batch_pk));
	gs_hex_encode(rpk, pf->keys.receipt_pk, sizeof(pf->keys.receipt_pk));
	gs_hex_encode(kid, pf->keys.batch_kid, sizeof(pf->keys.batch_kid));
	/* The bundle and the root key: the device pins the root key (the
	 * code's fingerprint) and takes the other keys from the bundle. */
	*answer = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o}",
	    "deployment", dep, "device_id", devhex, "worker", d.worker,
	    "grid", d.grid, "batch_pk", bpk, "batch_kid", kid,
	    "receipt_pk", rpk, "limits", pf_limits_json(pf),
	    "keys", pf_root_keys_json(pf));
	if (*answer == NULL) {
		/* The device is enrolled; it may retry and get EEXIST,
		 * which its operator can resolve with a fresh code. */
		r = GS_FAIL(GS_ENOMEM, "enroll answer");
		goto out;
	}
	rate_ok(pf, ip);
	gs_log(GS_LOG_INFO, "enrolled device %s for worker %s, grid %s "
	    "(token %s, from %s)", devhex, d.worker, d.grid, tid, ip);
	r = GS_OK;
	goto out;
fail:
	if (in_tx)
		pf->store->ops->rollback(pf->store);
	if (r == GS_EAUTH || r == GS_EPARSE) {
		rate_fail(pf, ip);
		gs_log(GS_LOG_WARNING, "enroll from %s refused: %s", ip,
		    gs_errmsg(r));
		/* One answer for every refusal (the detail is in the log). */
		if (r == GS_EAUTH)
			(void)GS_FAIL(GS_EAUTH, "enrollment code is wrong, "
			    "used or expired");
	}
out:
	if (locked)
		(void)pthread_mutex_unlock(&pf->lock);
	gs_crypto_memzero(&t, sizeof(t));
	json_decref(o);
	return r;
}
