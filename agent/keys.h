/*
 * keys.h - the agent's data key (DEK) lifecycle, internal side
 * (agent/unlock.c): the keyring row of schema/agent/0005-pii.sql, the
 * passphrase policy, crypto-shredding, and the CLI's unlock session.
 * The public half (protect, unlock, lock, keystore hook) is in
 * gridagent.h.
 *
 * The CLI session.  A command-line tool exits after every command, so
 * "unlocked" must outlive the process.  `gridagent unlock` makes a random
 * 32-byte session key, stores the DEK wrapped under it in the keyring row
 * (session_wrap), and writes the session key with an expiry to a file
 * readable only by the user:
 *   $XDG_RUNTIME_DIR/gridagent-<16 hex of BLAKE2b(home)>.session when
 *   $XDG_RUNTIME_DIR is a directory (a tmpfs on systemd systems: gone at
 *   power-off), else <home>/session.
 * Each command that opens the store reads the file; if it has not expired
 * it unwraps the DEK and moves the expiry forward (idle time, default 15
 * minutes, `gridagent config lock-idle-seconds`); if it has, the file and
 * session_wrap are deleted (the idle lock happens at the next command).
 * What it protects: a copy of agent.db alone (backup, stolen storage
 * after power-off with the file on tmpfs) never holds a key to the pii;
 * `gridagent lock`, a reboot (tmpfs) or the idle expiry ends a session.
 * What it does not: while a session is live, anyone running as the user
 * (or root) can read the file and the database together, exactly as they
 * could read the process memory of an unlocked app; without
 * $XDG_RUNTIME_DIR the file sits on the same disk as the database, so a
 * disk image taken during a live session opens it; an expired session
 * is only wiped at the next command (there is no daemon to do it).
 */
#ifndef AG_KEYS_H
#define AG_KEYS_H

#include <stdint.h>

#include <jansson.h>

struct ag_store;

/* The defaults (the Argon2id limits are recorded per store). */
#define AG_KDF_OPSLIMIT 3ULL
#define AG_KDF_MEMLIMIT (64u << 20) /* 64 MiB: ~0.1 s here, <1 s on a
				       handheld two to five times slower */
#define AG_MAX_FAILURES_DEFAULT 10
#define AG_IDLE_SECONDS_DEFAULT 900
#define AG_RETENTION_DAYS_DEFAULT 30 /* pii.c: days receipted pii is kept */
#define AG_PASSPHRASE_MAX 1024

/*
 * The passphrase policy.  Without a keystore: at least 10 bytes, and a
 * passphrase of digits only needs at least 16 (a 6-digit PIN falls to an
 * offline search in about an hour on 100 cores even under Argon2id,
 * research/reliability-anchors.md 3.7).  With a keystore wrapping the key
 * (hardware attempt limits): at least 4 characters.  GS_OK or GS_EINVAL
 * saying which rule failed.
 */
int ag_keys_policy(const char *pass, size_t len, int keystore);

/*
 * Destroys the DEK for good (crypto-shredding): the wrapped key and any
 * session wrap are overwritten (secure_delete) and the WAL truncated;
 * the session file is removed; the store is locked.  why is kept in the
 * keyring ("too many failed unlocks", "revoked").  GS_OK (also when there
 * is no key to destroy), storage errors.
 */
int ag_keys_destroy(struct ag_store *st, const char *why);

/* Adds "pii":{...} (protected, locked, destroyed, failures, wrap) to a
 * status object. */
int ag_keys_status(struct ag_store *st, json_t *into);
/* The error for work that needs the data key and finds none: "locked:
 * run gridagent unlock", or, when the key was destroyed (revoked, too many
 * failed unlocks), that it was, since unlock cannot help then.  Always
 * GS_EPERM (77). */
int ag_keys_locked_error(struct ag_store *st);

/* Reads the keyring at open: sets the store's protected flag.  GS_OK. */
int ag_keys_load(struct ag_store *st);

/* The CLI session (see above).  resume: silent GS_OK whether or not a
 * live session was found; start: after a successful unlock; end: lock
 * (removes the file and session_wrap). */
int ag_session_resume(struct ag_store *st);
int ag_session_start(struct ag_store *st);
int ag_session_end(struct ag_store *st);

/* Reads a passphrase from a file (first line, without its newline) into
 * secure memory: GS_OK and *out (gs_crypto_secure_free), *len. */
int ag_keys_read_passfile(const char *path, char **out, size_t *len);
/* The same from the terminal without echo (prompt on stderr); GS_EINVAL
 * when stdin is not a terminal. */
int ag_keys_read_tty(const char *prompt, char **out, size_t *len);

#endif
