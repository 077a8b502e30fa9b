/* A full disk on demand, for tests: write(), pwrite() and pwrite64() fail with ENOSPC from the
 * N-th call (counted from 0) on a file whose path contains a given text; every other write goes
 * through. Linked into a test executable, these definitions take the place of libc's for every
 * library (HDF5, libstdc++), so the real error paths run. Built as a module for LD_PRELOAD, it
 * arms itself from TAILOR_TEST_FULL_DISK="<N>:<text>" to fill the disk of a `tailor` process.
 * Not thread-safe to arm; counting is atomic. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static char g_match[1024];
static long g_after = -1;  /* < 0: disarmed */
static atomic_long g_count;
static atomic_int g_env_read;

void full_disk_arm(const char* match, long after) {
  snprintf(g_match, sizeof g_match, "%s", match);
  g_after = after;
  atomic_store(&g_count, 0);
  atomic_store(&g_env_read, 1);
}

void full_disk_disarm(void) { g_after = -1; atomic_store(&g_env_read, 1); }

/* Writes to matching files since full_disk_arm (failed ones included). */
long full_disk_count(void) { return atomic_load(&g_count); }

static void arm_from_env(void) {
  if (atomic_exchange(&g_env_read, 1)) return;
  const char* spec = getenv("TAILOR_TEST_FULL_DISK");
  const char* colon = spec ? strchr(spec, ':') : NULL;
  if (colon == NULL) return;
  snprintf(g_match, sizeof g_match, "%s", colon + 1);
  g_after = atol(spec);
}

/* Should this write to fd fail? */
static int full(int fd) {
  arm_from_env();
  if (g_after < 0) return 0;
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = '\0';
  if (strstr(target, g_match) == NULL) return 0;
  return atomic_fetch_add(&g_count, 1) >= g_after;
}

ssize_t write(int fd, const void* buf, size_t n) {
  static ssize_t (*real)(int, const void*, size_t);
  if (real == NULL) real = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  if (full(fd)) {
    errno = ENOSPC;
    return -1;
  }
  return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t at) {
  static ssize_t (*real)(int, const void*, size_t, off_t);
  if (real == NULL) real = (ssize_t(*)(int, const void*, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  if (full(fd)) {
    errno = ENOSPC;
    return -1;
  }
  return real(fd, buf, n, at);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t at) { return pwrite(fd, buf, n, at); }
