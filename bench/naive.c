/*
 * naive.c - the baseline gridsync is measured against: one HTTP POST of
 * plain JSON per record, one committed row per request.  This is what a
 * straightforward "REST API for the handheld" does.
 *
 *	naive serve DB            prints "listening on PORT", serves until killed
 *	naive post PORT FILE      POSTs each NDJSON line of FILE to
 *	                          http://127.0.0.1:PORT/records, one request per
 *	                          line over one keep-alive connection; prints
 *	                          "records N seconds S"
 *
 * A benchmark tool, not part of the product: it talks to libmicrohttpd,
 * libcurl and SQLite directly, outside the project's seams, and only to
 * 127.0.0.1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <sqlite3.h>

#define MAX_BODY (64 * 1024)

struct req {
	char body[MAX_BODY];
	size_t len;
	int too_big;
};

static sqlite3 *db;
static sqlite3_stmt *ins;

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, const char *text)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), (void *)text,
	    MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data, size_t *size,
    void **con_cls)
{
	struct req *rq = *con_cls;
	json_t *j, *uuid;
	json_error_t err;
	char *text;
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	if (strcmp(method, "POST") != 0 || strcmp(url, "/records") != 0)
		return reply(c, 404, "{\"error\":\"not found\"}");
	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*size > 0) {
		if (rq->len + *size > MAX_BODY)
			rq->too_big = 1;
		else {
			memcpy(rq->body + rq->len, data, *size);
			rq->len += *size;
		}
		*size = 0;
		return MHD_YES;
	}
	if (rq->too_big)
		return reply(c, 413, "{\"error\":\"too large\"}");
	if ((j = json_loadb(rq->body, rq->len, 0, &err)) == NULL)
		return reply(c, 400, "{\"error\":\"bad json\"}");
	uuid = json_object_get(j, "uuid");
	text = json_dumps(j, JSON_COMPACT);
	sqlite3_bind_text(ins, 1, json_is_string(uuid) ?
	    json_string_value(uuid) : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(ins, 2, text, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(ins) != SQLITE_DONE)
		ret = reply(c, 500, "{\"error\":\"db\"}");
	else
		ret = reply(c, 201, "{\"status\":\"created\"}");
	sqlite3_reset(ins);
	free(text);
	json_decref(j);
	return ret;
}

static void
done(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static int
serve(const char *path)
{
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			     "CREATE TABLE IF NOT EXISTS record(uuid TEXT "
			     "PRIMARY KEY, body TEXT NOT NULL)",
		NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO record VALUES (?, ?)", -1,
		&ins, NULL) != SQLITE_OK) {
		fprintf(stderr, "naive: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	/* One thread: SQLite has one writer anyway. */
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
	    handle, NULL, MHD_OPTION_NOTIFY_COMPLETED, done, NULL,
	    MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
	if (d == NULL)
		return 1;
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening on %u\n", (unsigned)info->port);
	fflush(stdout);
	pause();
	return 0;
}

static size_t
sink(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

static int
post(const char *port, const char *file)
{
	char url[128], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long status, records = 0;
	struct curl_slist *h = NULL;
	struct timespec t0, t1;
	FILE *f;
	CURL *c;

	if ((f = fopen(file, "r")) == NULL) {
		perror(file);
		return 1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%s/records", port);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((n = getline(&line, &cap, f)) > 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, line);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)n);
		if (curl_easy_perform(c) != CURLE_OK)
			return 1;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status != 201) {
			fprintf(stderr, "naive: HTTP %ld at record %ld\n",
			    status, records + 1);
			return 1;
		}
		records++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("records %ld seconds %.3f\n", records,
	    (double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	free(line);
	fclose(f);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2]);
	if (argc == 4 && strcmp(argv[1], "post") == 0)
		return post(argv[2], argv[3]);
	fprintf(stderr, "usage: naive serve DB | naive post PORT FILE\n");
	return 64;
}
