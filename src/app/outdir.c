/*
 * outdir.c — result folders replaced whole or not at all (see outdir.h): a staging folder beside the
 * target, an exchange of the two under a lock, removal of the old set, and the cleanup that a failure or
 * a signal needs. The signal-time cleanup uses only async-signal-safe calls (open, getdents64, unlinkat,
 * rmdir, kill) on paths prepared beforehand.
 */
#define _GNU_SOURCE /* renameat2, syscall, flock */
#include "outdir.h"

#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The names gmm writes into a result folder (fit and select). Other entries of an old folder are the
 * user's: they move into the new folder instead of being removed. */
static const char *const OWN_NAMES[] = {"model.json",
                                        "labels.csv",
                                        "loglik.csv",
                                        "report.md",
                                        "loglik.png",
                                        "loglik.gp",
                                        "loglik.dat",
                                        "clusters.png",
                                        "clusters.gp",
                                        "clusters_points.dat",
                                        "clusters_ellipses.dat",
                                        "clusters_means.dat",
                                        "init_study.png",
                                        "init_study.gp",
                                        "init_study.dat",
                                        "selection.csv",
                                        "selection.png",
                                        "selection.gp",
                                        "selection.dat"};

/* The prepared result the signal handler cleans up; NULL when none. Changed only while busy is set. */
static gmm_outdir *volatile active_outdir;
static pid_t main_pid;
/* Set while begin, commit or abort change the folders: the three signals are blocked in the calling
 * thread, and a signal delivered to another thread (an OpenMP worker) is held in pending_signal and
 * raised when the change is complete. */
static volatile sig_atomic_t busy, pending_signal;

static int is_own_name(const char *name)
{
    for (size_t i = 0; i < sizeof OWN_NAMES / sizeof OWN_NAMES[0]; i++)
        if (!strcmp(name, OWN_NAMES[i])) return 1;
    return 0;
}

/* -------------------------------------------------------------------------- async-signal-safe removal */

struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* 1 for a name this module may delete: one of gmm's outputs or a temporary file of one ("*.tmp.*"). */
static int is_removable(const char *name) { return is_own_name(name) || strstr(name, ".tmp.") != NULL; }

/* Unlinks gmm's files (is_removable) in folder path, then removes the folder if that left it empty; the
 * user's files (moved in by a commit that then failed, or added meanwhile) are never deleted.
 * Async-signal-safe. */
static void remove_flat_folder(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        /* unlinking while reading can make getdents skip entries: read again until a pass removes nothing */
        for (int pass = 0; pass < 8; pass++) {
            if (lseek(fd, 0, SEEK_SET) != 0) break;
            int removed = 0;
            char buf[4096] __attribute__((aligned(8)));
            long got;
            while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
                for (long off = 0; off < got;) {
                    struct dirent64_raw *e = (struct dirent64_raw *)(buf + off);
                    off += e->d_reclen;
                    if (!is_removable(e->d_name)) continue;
                    if (unlinkat(fd, e->d_name, 0) == 0) removed++;
                }
            }
            if (!removed) break;
        }
        close(fd);
    }
    (void)rmdir(path);
}

/* Removes the staging folder and the created folders (deepest first; rmdir leaves a non-empty one).
 * Async-signal-safe. */
static void undo(gmm_outdir *o)
{
    if (o->staging[0]) remove_flat_folder(o->staging);
    o->staging[0] = '\0';
    for (int i = o->n_created - 1; i >= 0; i--) (void)rmdir(o->created[i]);
    o->n_created = 0;
}

static void on_signal(int sig)
{
    if (getpid() != main_pid) _exit(128 + sig); /* a child between fork and exec: touch nothing */
    if (busy) {
        pending_signal = sig;
        return;
    }
    pid_t child = gmm_plot_child();
    if (child > 0 && kill(child, SIGKILL) == 0) /* and wait, so that it writes nothing into the folder after */
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) continue;
    gmm_atomic_remove_temporaries();
    gmm_outdir *o = active_outdir;
    if (o) undo(o);
    signal(sig, SIG_DFL);
    raise(sig);
}

void gmm_outdir_install_signal_handlers(void)
{
    main_pid = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        struct sigaction old;
        /* a signal ignored by whoever started gmm (nohup) stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

/* Enters (block = 1) or leaves a change of the folders (see busy); on leaving, a signal that arrived
 * meanwhile is raised again, now that the folders are in a consistent state. */
static void block_signals(int block, sigset_t *saved)
{
    if (block) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGINT);
        sigaddset(&s, SIGTERM);
        sigaddset(&s, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &s, saved);
        busy = 1;
    } else {
        busy = 0;
        pthread_sigmask(SIG_SETMASK, saved, NULL);
        int sig = pending_signal;
        if (sig) {
            pending_signal = 0;
            raise(sig);
        }
    }
}

#define MAX_CARRIED 256 /* the user's files a result folder may hold besides gmm's */

/* GMM_OK when the existing folder target can be replaced: besides gmm's outputs it holds at most
 * MAX_CARRIED entries, each a regular file or a symbolic link (the user's notes, carried into the new
 * folder). A folder holding subfolders or special files (a home folder, /tmp) is not a result folder and
 * is refused, as is a mount point. */
static gmm_status check_replaceable(const char *target, const char *parent)
{
    struct stat ts, ps;
    if (stat(target, &ts) == 0 && stat(parent, &ps) == 0 && ts.st_dev != ps.st_dev)
        return gmm_fail(GMM_ERR_IO,
                        "output folder %s is a mount point; the result folder is replaced whole, so "
                        "name a folder inside it",
                        target);
    DIR *d = opendir(target);
    if (!d) return gmm_fail(GMM_ERR_IO, "cannot read output folder %s: %s", target, strerror(errno));
    gmm_status st = GMM_OK;
    size_t foreign = 0;
    struct dirent *e;
    while (st == GMM_OK && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..") || is_removable(name)) continue;
        struct stat es;
        if (fstatat(dirfd(d), name, &es, AT_SYMLINK_NOFOLLOW) != 0) continue; /* gone meanwhile */
        if (!S_ISREG(es.st_mode) && !S_ISLNK(es.st_mode))
            st = gmm_fail(GMM_ERR_IO,
                          "output folder %s holds %s%s, which gmm does not write; the result folder is "
                          "replaced whole (your files in it are kept), so name a folder of its own",
                          target, name, S_ISDIR(es.st_mode) ? "/" : "");
        else if (++foreign > MAX_CARRIED)
            st = gmm_fail(GMM_ERR_IO,
                          "output folder %s holds more than %d files that gmm does not write; the result "
                          "folder is replaced whole, so name a folder of its own",
                          target, MAX_CARRIED);
    }
    closedir(d);
    return st;
}

/* ------------------------------------------------------------------------------------------- prepare */

static int copy_path(char *dst, const char *src)
{
    size_t len = strlen(src);
    if (len >= GMM_PATH_MAX) return -1;
    memcpy(dst, src, len + 1);
    return 0;
}

/* mkdir -p of path, recording each folder it creates in o->created (outermost first). */
static gmm_status make_parents(gmm_outdir *o, const char *path)
{
    char buf[GMM_PATH_MAX];
    if (copy_path(buf, path)) return gmm_fail(GMM_ERR_IO, "cannot create %s: path too long", path);
    size_t len = strlen(buf);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) == 0) {
            if (o->n_created == GMM_OUTDIR_MAX_CREATED) {
                (void)rmdir(buf); /* not recorded: removed here, the recorded ones by undo */
                return gmm_fail(GMM_ERR_IO, "cannot create %s: more than %d missing folders", path,
                                GMM_OUTDIR_MAX_CREATED);
            }
            memcpy(o->created[o->n_created++], buf, i + 1);
        } else if (errno != EEXIST) {
            return gmm_fail(GMM_ERR_IO, "cannot create output folder %s: %s", buf, strerror(errno));
        }
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return gmm_fail(GMM_ERR_IO, "cannot create output folder %s: a file of that name is in the way", path);
    return GMM_OK;
}

/* Sets o->target (the real path when target exists) and o->parent; creates the missing parents. */
static gmm_status resolve_target(gmm_outdir *o, const char *target)
{
    char given[GMM_PATH_MAX];
    if (copy_path(given, target) || !target[0]) return gmm_fail(GMM_ERR_IO, "invalid output folder '%s'", target);
    size_t len = strlen(given);
    while (len > 1 && given[len - 1] == '/') given[--len] = '\0';
    struct stat st;
    if (stat(given, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return gmm_fail(GMM_ERR_IO, "output folder %s exists and is not a folder", target);
        char *real = realpath(given, NULL);
        char *cwd = realpath(".", NULL);
        int bad = !real || !cwd || copy_path(o->target, real);
        size_t rl = real ? strlen(real) : 0;
        int holds_cwd = !bad &&
                        (!strcmp(real, "/") || (!strncmp(cwd, real, rl) && (cwd[rl] == '\0' || cwd[rl] == '/')));
        free(real);
        free(cwd);
        if (bad) return gmm_fail(GMM_ERR_IO, "cannot resolve output folder %s: %s", target, strerror(errno));
        if (holds_cwd)
            return gmm_fail(GMM_ERR_IO,
                            "output folder %s is the current folder or holds it; the result folder is "
                            "replaced whole, so name a folder of its own (e.g. --out %s/gmm-out)",
                            target, target);
    } else if (errno != ENOENT) {
        return gmm_fail(GMM_ERR_IO, "cannot use output folder %s: %s", target, strerror(errno));
    } else {
        memcpy(o->target, given, len + 1);
    }
    const char *slash = strrchr(o->target, '/');
    const char *name = slash ? slash + 1 : o->target;
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return gmm_fail(GMM_ERR_IO, "output folder %s must end in a folder name", target);
    if (!slash)
        strcpy(o->parent, ".");
    else if (slash == o->target)
        strcpy(o->parent, "/");
    else {
        memcpy(o->parent, o->target, (size_t)(slash - o->target));
        o->parent[slash - o->target] = '\0';
    }
    return make_parents(o, o->parent);
}

gmm_status gmm_outdir_begin(gmm_outdir *o, const char *target)
{
    memset(o, 0, sizeof *o);
    sigset_t saved;
    block_signals(1, &saved);
    active_outdir = o;
    gmm_status st = resolve_target(o, target);
    struct stat ts;
    if (st == GMM_OK && stat(o->target, &ts) == 0) st = check_replaceable(o->target, o->parent);
    if (st == GMM_OK) {
        const char *slash = strrchr(o->target, '/');
        const char *name = slash ? slash + 1 : o->target;
        char templ[GMM_PATH_MAX];
        int len = snprintf(templ, sizeof templ, "%s/.%.200s.gmm-new-XXXXXX", o->parent, name);
        if (len < 0 || (size_t)len >= sizeof templ)
            st = gmm_fail(GMM_ERR_IO, "cannot create a folder beside %s: path too long", o->target);
        else if (!mkdtemp(templ))
            st = gmm_fail(GMM_ERR_IO, "cannot create a folder beside %s: %s", o->target, strerror(errno));
        else
            memcpy(o->staging, templ, (size_t)len + 1);
    }
    if (st != GMM_OK) {
        undo(o);
        active_outdir = NULL;
    }
    block_signals(0, &saved);
    return st;
}

void gmm_outdir_abort(gmm_outdir *o)
{
    sigset_t saved;
    block_signals(1, &saved);
    undo(o);
    if (active_outdir == o) active_outdir = NULL;
    block_signals(0, &saved);
}

/* ---------------------------------------------------------------------------------------------- swap */

/* Moves the entries of folder from that are not gmm's outputs and not present in folder to into to.
 * Returns 0, or -1 (errno set, the name in *failed) after moving back what it had moved. */
static int carry_user_entries(const char *from, const char *to, char *failed, size_t cap)
{
    DIR *d = opendir(from);
    if (!d) return -1;
    int tfd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd < 0) {
        closedir(d);
        return -1;
    }
    int ffd = dirfd(d), rc = 0;
    char moved[MAX_CARRIED][256];
    size_t n_moved = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..") || is_removable(name)) continue;
        struct stat st;
        if (fstatat(tfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) continue; /* the new set has it */
        if (n_moved == sizeof moved / sizeof moved[0] || strlen(name) >= sizeof moved[0] ||
            renameat(ffd, name, tfd, name) != 0) {
            if (n_moved == sizeof moved / sizeof moved[0]) errno = EMFILE;
            snprintf(failed, cap, "%s", name);
            rc = -1;
            break;
        }
        strcpy(moved[n_moved++], name);
    }
    if (rc) {
        int e2 = errno;
        while (n_moved > 0) (void)renameat(tfd, moved[n_moved - 1], ffd, moved[n_moved - 1]), n_moved--;
        errno = e2;
    }
    close(tfd);
    closedir(d);
    return rc;
}

/* Gives the staging folder the mode (and, for root, the owner) of the folder it replaces, or when there is
 * none the mode mkdir would have given (0777 less the umask). */
static void set_mode_like(const char *path, const char *target)
{
    struct stat st;
    if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0)) (void)chown(path, st.st_uid, st.st_gid);
        (void)chmod(path, st.st_mode & 07777);
        return;
    }
    mode_t mask = umask(0);
    umask(mask);
    (void)chmod(path, 0777 & ~mask);
}

/* Puts staging in place of the existing folder target; on success *old names where the old set now is
 * (the staging path after an exchange, or the aside path). */
static gmm_status swap_existing(gmm_outdir *o, char *old, size_t cap)
{
    char failed[256] = "";
    gmm_status st = check_replaceable(o->target, o->parent);
    if (st != GMM_OK) return st;
    if (carry_user_entries(o->target, o->staging, failed, sizeof failed) != 0)
        return gmm_fail(GMM_ERR_IO, "cannot move %s/%s into the new result: %s", o->target, failed, strerror(errno));
    if (renameat2(AT_FDCWD, o->staging, AT_FDCWD, o->target, RENAME_EXCHANGE) == 0) {
        snprintf(old, cap, "%s", o->staging);
        return GMM_OK;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP && errno != EOPNOTSUPP) {
        int e = errno;
        (void)carry_user_entries(o->staging, o->target, failed, sizeof failed);
        return gmm_fail(GMM_ERR_IO, "cannot replace %s: %s", o->target, strerror(e));
    }
    /* no atomic exchange on this file system: old aside, new in (a reader may find no folder in between) */
    size_t pl = strlen(o->staging);
    if (pl + 4 >= cap) return gmm_fail(GMM_ERR_IO, "cannot replace %s: path too long", o->target);
    snprintf(old, cap, "%.*sold-%s", (int)(pl - 6), o->staging, o->staging + pl - 6);
    if (rename(o->target, old) != 0) {
        int e = errno;
        (void)carry_user_entries(o->staging, o->target, failed, sizeof failed);
        return gmm_fail(GMM_ERR_IO, "cannot move %s aside: %s", o->target, strerror(e));
    }
    if (rename(o->staging, o->target) != 0) {
        int e = errno;
        (void)rename(old, o->target);
        (void)carry_user_entries(o->staging, o->target, failed, sizeof failed);
        return gmm_fail(GMM_ERR_IO, "cannot rename %s to %s: %s", o->staging, o->target, strerror(e));
    }
    return GMM_OK;
}

/* Removes the previous result (now at old): gmm's files, and any name the new set in target also has. */
static void remove_old_set(const char *old, const char *target)
{
    DIR *d = opendir(old);
    int tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d && tfd >= 0) {
        struct dirent *e;
        struct stat st;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
                (is_removable(e->d_name) || fstatat(tfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0))
                (void)unlinkat(dirfd(d), e->d_name, 0);
    }
    if (tfd >= 0) close(tfd);
    if (d) closedir(d);
    (void)rmdir(old);
}

gmm_status gmm_outdir_commit(gmm_outdir *o)
{
    sigset_t saved;
    block_signals(1, &saved);
    gmm_status st = GMM_OK;
    o->warning[0] = '\0';
    int lock = open(o->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0 || flock(lock, LOCK_EX) != 0)
        st = gmm_fail(GMM_ERR_IO, "cannot lock %s: %s", o->parent, strerror(errno));
    char old[GMM_PATH_MAX] = "";
    if (st == GMM_OK) {
        set_mode_like(o->staging, o->target);
        struct stat sb;
        if (lstat(o->target, &sb) != 0) { /* sb is unset: only a missing target goes on */
            if (errno != ENOENT)
                st = gmm_fail(GMM_ERR_IO, "cannot use output folder %s: %s", o->target, strerror(errno));
            else if (rename(o->staging, o->target) != 0)
                st = gmm_fail(GMM_ERR_IO, "cannot rename %s to %s: %s", o->staging, o->target, strerror(errno));
        } else if (!S_ISDIR(sb.st_mode)) {
            st = gmm_fail(GMM_ERR_IO, "output folder %s is no longer a folder", o->target);
        } else {
            st = swap_existing(o, old, sizeof old);
        }
    }
    if (st == GMM_OK) {
        o->staging[0] = '\0'; /* it is the result now */
        o->n_created = 0;
        if (old[0]) {
            remove_old_set(old, o->target);
            struct stat sb;
            if (lstat(old, &sb) == 0)
                snprintf(o->warning, sizeof o->warning,
                         "the previous result could not be removed entirely: "
                         "what is left of it is in %s",
                         old);
        }
    } else {
        undo(o);
    }
    if (lock >= 0) close(lock); /* releases the lock */
    if (active_outdir == o) active_outdir = NULL;
    block_signals(0, &saved);
    return st;
}
