/*
 * banned.h - functions that are easy to misuse.  Including this after the
 * system headers turns any use into a compile error.  Use snprintf,
 * strtol/strtoull/strtod with an end pointer and explicit lengths instead.
 */
#ifndef REFSCAN_BANNED_H
#define REFSCAN_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef gets
#define gets(x) BANNED(gets)

#endif
