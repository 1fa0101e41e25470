/*
 * json.h - a fast, strict JSON reader: record input on the agent, the
 * change lines of a batch on the platform.
 *
 * jansson's json_loadb costs about 190 instructions per input byte (a
 * callback per character); a bulk import of 100,000 records spent half
 * its time there.  This reader builds the same jansson values directly
 * from the bytes, several times faster, and accepts exactly what
 * json_loadb(..., JSON_REJECT_DUPLICATES) accepts: RFC 8259 JSON, valid
 * UTF-8 only, no \u0000, no duplicate keys, integers that fit json_int_t,
 * no real overflow, nothing but whitespace after the value.
 * tests/unit/agent-json.c checks that against jansson on many thousands of
 * mutated inputs.
 */
#ifndef GS_JSON_H
#define GS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Nesting deeper than this is refused (records are at most 3 deep). */
#define GS_JSON_MAX_DEPTH 64

/*
 * Parses text[0..len) (need not be NUL-terminated).  GS_OK and *out (a new
 * reference); or GS_EPARSE with a reason ("column 12: invalid escape")
 * in why, and *out NULL; or GS_ENOMEM.
 */
int gs_json_parse(const char *text, size_t len, json_t **out, char *why,
    size_t whylen);

/*
 * The same, and *plain says whether text is spelled exactly as the batch
 * encoder (sync/batch.c, put_value) writes what it parsed to: 1 only when
 * there is no whitespace outside strings, no escape in any string or key,
 * no real (only integers, not "-0"), every object's keys in strictly
 * increasing byte order, and nothing nested deeper than 32.  0 says
 * nothing either way: the caller encodes the value to find out.  The
 * platform's canonical check of every change line skips its re-encoding
 * when *plain is 1 (tests/unit/sync-batch.c checks, on random values and
 * damaged spellings, that *plain 1 always means the encoder gives the
 * same bytes).
 */
int gs_json_parse_plain(const char *text, size_t len, json_t **out,
    int *plain, char *why, size_t whylen);

/*
 * A member of an object read by gs_json_plain_object: its key's bytes
 * (without the quotes) and its value's spelling, as ranges of the text.
 */
struct gs_json_span {
	const char *key;
	size_t klen;
	const char *val;
	size_t vlen;
	/* The key's first 8 bytes as a big-endian integer, zero-padded
	 * (gs_json_span_key): most keys differ in them, so that ordering
	 * two members is one integer compare (gs_json_span_cmp). */
	uint64_t k8;
	/*
	 * What the plain readers saw of a string value while they read it,
	 * so that a validator need not read it again: when every character
	 * of the value is printable ASCII (0x20-0x7e) or a three-byte UTF-8
	 * character with lead byte E1, E3-EC, EE or EF (U+1000-U+1FFF,
	 * U+3000-U+CFFF, U+E000-U+FFFF: neither a control, a line break
	 * nor a bidirectional control), vchars is its number of characters;
	 * otherwise (a value that is not a string, or one with any other
	 * character) SIZE_MAX, which says nothing.
	 */
	size_t vchars;
};

/* Fills m->k8 from m->key and m->klen, and sets m->vchars to SIZE_MAX:
 * for a span made by hand. */
void gs_json_span_key(struct gs_json_span *m);

/* Deepest nesting gs_json_plain_object takes (the text's own object is
 * level 1); deeper is "not plain", well inside the encoder's limit. */
#define GS_JSON_PLAIN_DEPTH 16

/*
 * 1 when text[0..len) is one object whose member values are spelled
 * exactly as the batch encoder (sync/batch.c, put_value) writes them: the
 * rules of gs_json_parse_plain's *plain (no whitespace, no escape, no
 * real, no "-0", every nested object's keys in strictly increasing byte
 * order), integers of at most 18 digits, nesting at most
 * GS_JSON_PLAIN_DEPTH, and whose own keys are plain and distinct, in any
 * order, at most max of them.  Then m[0..*n) are its members in the
 * encoder's order (increasing key bytes).  0 for anything else, invalid
 * text included: the caller parses it the usual way, which decides.
 * Reads the text once and allocates nothing: it lets the agent copy
 * stored fields (kept in form order) into a batch line instead of
 * parsing and encoding them again.
 */
int gs_json_plain_object(const char *text, size_t len, struct gs_json_span *m,
    size_t max, size_t *n);
/*
 * The same verdict and members for an object whose own keys must come in
 * the encoder's order too (strictly increasing bytes), as a batch line's
 * "fields" do: 1 exactly when gs_json_plain_object gives 1 and its
 * members are in the text's order.  Nothing is sorted or searched: the
 * platform's decoder reads every new record's fields with it.
 */
int gs_json_plain_sorted(const char *text, size_t len, struct gs_json_span *m,
    size_t max, size_t *n);
/*
 * gs_json_plain_object's reading without its sort and its duplicate
 * check: 1 when text[0..len) is one object spelled as gs_json_plain_object
 * requires, its keys plain but NOT checked to be distinct; m[0..*n) are
 * its members in the text's order.  A caller must rule out duplicate keys
 * itself (gs_record_validate_spans does: validate.h).  The agent's bulk
 * import reads each line with it, to store the members in the order they
 * came (as the parsed object would).
 */
int gs_json_plain_members(const char *text, size_t len, struct gs_json_span *m,
    size_t max, size_t *n);
/* The encoder's order of two members: their keys' bytes as strcmp
 * compares them, a prefix first.  <0, 0 (the same key) or >0.  Both
 * spans' k8 must be filled (gs_json_plain_object, gs_json_span_key). */
int gs_json_span_cmp(const struct gs_json_span *a,
    const struct gs_json_span *b);

/*
 * A per-thread arena for jansson's allocations, for a hot loop that
 * builds and drops one value at a time (the bulk import's readers: a
 * parsed person is about 130 jansson allocations, and malloc and free
 * were a tenth of the import).  While an arena is set on a thread every
 * jansson allocation of that thread comes from its blocks, free of one
 * of them is a no-op, and gs_json_arena_reset makes all of its memory
 * new again.
 *
 * The first begin installs allocation functions in jansson for the whole
 * process (json_set_alloc_funcs); outside an arena, and for anything
 * larger than a quarter block, they call the functions that were
 * installed before (malloc and free by default), so every other use of
 * jansson is as before.  Install happens once (pthread_once), but it is
 * not atomic with other threads already inside jansson: begin the first
 * arena before other threads use jansson.
 *
 * The contract: every jansson value made on the thread between begin and
 * reset (or end) is freed before that reset (or end), on that thread,
 * and none escapes it.  The same holds for json_dumps text, which must
 * be freed with gs_json_free, never free(): inside an arena it is arena
 * memory.  begin: GS_OK or GS_ENOMEM (then no arena: use
 * jansson as usual).  reset and end of NULL are no-ops.
 */
struct gs_json_arena;
int gs_json_arena_begin(struct gs_json_arena **out);
/* Frees what jansson allocated for the caller (json_dumps text) with
 * jansson's own free function, arena or not.  NULL ok. */
void gs_json_free(void *p);
void gs_json_arena_reset(struct gs_json_arena *a);
void gs_json_arena_end(struct gs_json_arena *a);
/*
 * gs_json_wipe_frees: from then on, in the whole process, every block
 * jansson frees to the heap is wiped first (explicit_bzero), and so is
 * all the memory an arena held, when end frees it (reset only makes it
 * new: it stays the arena's, written over by what comes next).  The
 * agent calls it first thing, so that the personal data its values held
 * (pulled pages, opened fields) is not left in freed memory.  It installs the arena's functions (as the first
 * begin does: call it before other threads use jansson) and works only
 * over the C library's malloc and free (GS_OK), not over other
 * functions installed before it (GS_EINVAL, nothing changed).
 */
int gs_json_wipe_frees(void);

/* The same, under the name it had in agent/ (agent/cli.c and
 * agent/store.c still call it; a real function, not a macro, so objects
 * built before the move still link).  Remove once they call
 * gs_json_parse. */
int ag_json_parse(const char *text, size_t len, json_t **out, char *why,
    size_t whylen);

#endif
