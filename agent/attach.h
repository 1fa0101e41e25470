/*
 * attach.h - photos and other attachments on the device (issue 5):
 * `gridagent attach` (attach.c) seals a file for the platform at once and
 * names it in its record; `gridagent sync` uploads the sealed files after
 * the record batches (attach_sync.c), resumably, until a signed receipt
 * covers each.  Formats: sync/attachment.h, docs/PROTOCOL.md section 8.
 *
 * Files in the agent home:
 *	attachments/sealed/HASH   the sealed file (GSA1), kept until receipted
 *	attachments/plain/HASH    a plaintext copy, only with --keep, deleted
 *	                          when receipted unless the setting
 *	                          keep_plain_after_receipt is "1"
 */
#ifndef AG_ATTACH_H
#define AG_ATTACH_H

#include <signal.h>
#include <stdint.h>

#include <jansson.h>

struct ag_store;
struct ag_cli;
struct ag_http;
struct ag_device;

struct ag_attach_opts {
	const char *phase;     /* BEFORE, DURING, AFTER or NULL */
	const char *note;      /* one line, or NULL */
	const char *location;  /* "LAT,LON,ACC,SYS" (ACC may be empty), NULL */
	int64_t taken_at;      /* ms; < 0: the file's modification time */
	int keep;	       /* keep a plaintext copy until receipted */
	uint32_t chunk_size;   /* secretstream message size; 0 = default */
};

struct ag_attach_result {
	char hash[65];	      /* hex BLAKE2b-256 of the file */
	const char *mime;     /* static string */
	uint64_t size;	      /* plaintext bytes */
	uint64_t sealed_len;
	int reused;	      /* the same file was attached before: not
				 sealed again, not uploaded again */
};

/*
 * Attaches the file at path to record uuid: checks it (a regular file,
 * not empty, within the platform's max_attachment), sniffs its MIME type,
 * hashes it, seals it into attachments/sealed/HASH (fsync'd, renamed into
 * place) unless that file is known already, and then in ONE transaction
 * adds {hash, mime, size, taken_at, phase, note, location} to the record's
 * "attachments" field (a normal edit: validated, coalesced, audited), the
 * attachment row and the record_attachment row.
 *   GS_OK; GS_ENOTENROLLED (sealing needs the platform key); GS_ENOTFOUND
 *   (no such record, or deleted); GS_EINVAL (not a regular file, empty,
 *   bad --location, a type without an attachments field); GS_ETOOBIG
 *   (over the limit, message names both sizes); GS_EEXIST (already
 *   attached to this record); GS_EVALIDATION; GS_EIO; storage errors.
 * A failure leaves the record unchanged (a sealed file may remain and is
 * reused by the next attach of the same file).
 */
int ag_attach(struct ag_store *st, const char *uuid, const char *path,
    const struct ag_attach_opts *o, struct ag_attach_result *res);

/* `gridagent attach` (main.c's table). */
int ag_cmd_attach(struct ag_cli *cli, int argc, char **argv);

/* The "attachments" part of `status`: pending (not started), partial
 * (some bytes on the platform), done, each with bytes, and the records
 * still waiting for an attachment receipt. */
int ag_attach_status(struct ag_store *st, json_t *into);

/* Stores the platform's max_attachment (enroll answer, GET /v1/health)
 * when it changed. */
int ag_attach_set_limit(struct ag_store *st, int64_t max);

/* 1 when some attachment still waits for its receipt. */
int ag_attach_pending(struct ag_store *st, int *yes);

struct ag_attach_sync_stats {
	uint64_t done;	      /* attachments receipted in this run */
	uint64_t pending;     /* 1 when some are not receipted at the end */
	uint64_t bytes_sent;  /* sealed bytes sent in PUT bodies */
	uint64_t bytes_resent; /* of which sent again after a cut */
	uint64_t cuts;	      /* transfers that failed mid-way */
};

/*
 * Uploads every sealed attachment not yet receipted (oldest first):
 * GET the platform's offset, PUT chunks from there (each durable on the
 * platform before its answer), halving the chunk after a failed transfer
 * and growing it again after successes; done when a GSAR receipt that
 * verifies with the pinned receipt key names this deployment, device,
 * hash and sealed length.  Then the sealed file (and a kept plaintext)
 * is deleted.  `retries`: failed requests in a row without progress
 * before giving up (a RETRY-class code; progress resets the count).
 * $GRIDAGENT_FAULT "kill-after-chunk=N" SIGKILLs the process after the
 * N-th accepted chunk (crash tests).  GS_OK when all are done.
 */
int ag_attach_sync(struct ag_store *st, struct ag_http *h,
    const struct ag_device *dev, int retries, volatile sig_atomic_t *stop,
    struct ag_attach_sync_stats *stats);

#endif
