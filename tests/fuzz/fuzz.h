/*
 * fuzz.h - shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * Each harness NAME.c defines one entry point, FUZZ_ENTRY(NAME).  Built by
 * `make fuzz` it is LLVMFuzzerTestOneInput (clang -fsanitize=fuzzer);
 * tests/unit/fuzz-regressions.c includes every harness with FUZZ_ENTRY
 * defined to fuzz_NAME and replays tests/fuzz/corpus/NAME/ and
 * tests/fuzz/regressions/NAME/ through them on every `make test`.
 *
 * A harness never asserts on the verdict (bad input gets an error code and
 * that is fine); it lets the sanitizers judge, and aborts only where two
 * answers that must agree disagree (the differential JSON harness).
 */
#ifndef GS_FUZZ_H
#define GS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY(name) LLVMFuzzerTestOneInput
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif

/* The seeds of tests/data/vectors/keys.txt: the frozen vectors' keys, so
 * that corpus entries made from the vectors verify and open. */
#define FUZZ_PLATFORM_BATCH_SEED 0x11
#define FUZZ_PLATFORM_RECEIPT_SEED 0x22
#define FUZZ_DEVICE_SEED 0x33

#endif
