/*
 * banned.h - functions that must not be used in gridsync (after Git's
 * banned.h).  Every .c file includes it after all other headers, so a
 * use becomes a compile error that names the function.
 *
 * strcpy/strcat/sprintf/vsprintf: unbounded writes; use gs_buf or snprintf.
 * atoi/atol/atoll: no error reporting; use gs_parse_u64/gs_parse_i64.
 * gets: unbounded.  strtok: hidden state; use strtok_r or a real parser.
 */
#ifndef GS_CORE_BANNED_H
#define GS_CORE_BANNED_H

#define GS_BANNED(func) sorry_##func##_is_banned_in_gridsync

#undef strcpy
#define strcpy(x, y) GS_BANNED(strcpy)
#undef strcat
#define strcat(x, y) GS_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) GS_BANNED(strncpy)
#undef sprintf
#define sprintf(...) GS_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) GS_BANNED(vsprintf)
#undef gets
#define gets(x) GS_BANNED(gets)
#undef atoi
#define atoi(x) GS_BANNED(atoi)
#undef atol
#define atol(x) GS_BANNED(atol)
#undef atoll
#define atoll(x) GS_BANNED(atoll)
#undef strtok
#define strtok(x, y) GS_BANNED(strtok)

#endif
