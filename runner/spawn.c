/* fork/exec helpers of runner/spawn.h. */
#include "runner/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void redirect(const char *path, int fd) {
  int f = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (f >= 0) {
    dup2(f, fd);
    close(f);
  }
}

int rcc_spawn(char *const argv[], const rcc_spawn_opts_t *opts) {
  int pipefd[2] = {-1, -1};
  if (opts->capture) {
    *opts->capture = NULL;
    if (pipe(pipefd) != 0) return -1;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    if (opts->capture) close(pipefd[0]), close(pipefd[1]);
    return -1;
  }
  if (pid == 0) {
    if (opts->capture) {
      dup2(pipefd[1], 1);
      close(pipefd[0]);
      close(pipefd[1]);
    } else if (opts->out_path) {
      redirect(opts->out_path, 1);
    }
    if (opts->err_path) redirect(opts->err_path, 2);
    for (const char *const *u = opts->unset; u && *u; u++)
      unsetenv(*u);
    execvp(argv[0], argv);
    _exit(127);
  }
  char *buf = NULL;
  if (opts->capture) {
    close(pipefd[1]);
    size_t len = 0, cap = 0;
    for (;;) {
      if (len + 4096 + 1 > cap) {
        char *b = realloc(buf, cap = cap * 2 + 8192);
        if (!b) break;
        buf = b;
      }
      ssize_t n = read(pipefd[0], buf + len, cap - len - 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      len += (size_t)n;
    }
    close(pipefd[0]);
    if (buf) buf[len] = '\0';
    *opts->capture = buf;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int rcc_have_program(const char *name) {
  const char *path = getenv("PATH");
  if (!path) return 0;
  char dir[PATH_MAX];
  while (*path) {
    size_t n = strcspn(path, ":");
    snprintf(dir, sizeof dir, "%.*s/%s", (int)n, path, name);
    if (n && access(dir, X_OK) == 0) return 1;
    path += n + (path[n] == ':');
  }
  return 0;
}

const char *rcc_self_exe(void) {
  static char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "rcc-dist";
  exe[n] = '\0';
  return exe;
}
