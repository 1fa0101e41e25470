/*
 * http.c - fuzz harness: one HTTP request through the platform's routes
 * (platform/api.c) exactly as platform/http.c hands it over after
 * libmicrohttpd parsed the request line: method, path, client address,
 * body.  Input: byte 0 picks the method, then the path up to the first
 * newline, then the body.  The platform is a real deployment made once in
 * a temporary directory (pf_init_home); enrollment bodies, batch paths and
 * envelopes, attachment paths, unknown routes all go through.
 */
#include "fuzz.h"

#include <stdio.h>
#include <unistd.h>

#include "api.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "http.h"
#include "platform.h"
#include "core/banned.h"

static struct pf_platform *http_pf;
static struct pf_http_handler http_h;
static char http_dir[64]; /* the temporary deployment's parent */

static const char *
http_query(const struct pf_request *req, const char *name)
{
	(void)req;
	(void)name;
	return NULL;
}

static void
http_init(void)
{
	char home[96];

	if (http_pf != NULL)
		return;
	gs_log_set_level(GS_LOG_ERROR);
	snprintf(http_dir, sizeof(http_dir), "/tmp/gs-fuzz-http.XXXXXX");
	if (mkdtemp(http_dir) == NULL)
		abort();
	snprintf(home, sizeof(home), "%s/pf", http_dir);
	if (pf_init_home(home, "http://127.0.0.1:9") != GS_OK ||
	    pf_platform_open(home, &http_pf) != GS_OK)
		abort();
	pf_api_handler(http_pf, &http_h);
}

int
FUZZ_ENTRY(http)(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "POST", "PUT",
		"DELETE" };
	struct pf_request req;
	struct pf_response resp;
	char path[512], ip[32];
	static unsigned calls;
	size_t i, n;

	http_init();
	if (size < 1)
		return 0;
	for (n = 0; 1 + n < size && data[1 + n] != '\n' &&
	     n < sizeof(path) - 1; n++)
		path[n] = data[1 + n] == '\0' ? '?' : (char)data[1 + n];
	path[n] = '\0';
	i = 1 + n + (1 + n < size); /* past the newline */
	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = methods[data[0] % 4];
	req.path = path;
	/* A new address per call: the enrollment rate limit would
	 * otherwise turn every later enroll body away before parsing. */
	calls++;
	snprintf(ip, sizeof(ip), "10.%u.%u.%u", (calls >> 16) & 255,
	    (calls >> 8) & 255, calls & 255);
	req.ip = ip;
	req.body = i < size ? data + i : NULL;
	req.body_len = size - i;
	req.query = http_query;
	/* The body cap http.c would have applied before calling. */
	if (http_h.body_max != NULL &&
	    req.body_len > http_h.body_max(http_h.ctx, req.method, path))
		return 0;
	gs_buf_init(&resp.body, 1 << 20);
	gs_errmsg_clear();
	http_h.handle(http_h.ctx, &req, &resp);
	gs_buf_release(&resp.body);
	return 0;
}
