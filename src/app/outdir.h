/*
 * outdir.h — the result folder of `gmm fit` and `gmm select`, replaced whole or not at all: the new set of
 * files is written into a private staging folder beside the target, then swapped in with one rename, so
 * that a reader sees either the complete previous set or the complete new one. A run that fails or is
 * interrupted (SIGINT, SIGTERM, SIGHUP) leaves the previous set, and removes its staging folder and every
 * folder it created. Part of the program, not of the library.
 */
#ifndef GMM_OUTDIR_H
#define GMM_OUTDIR_H

#include "gmm_internal.h"

#define GMM_OUTDIR_MAX_CREATED 32 /* folders one run may create on the way to its target */

typedef struct gmm_outdir {
    char target[GMM_PATH_MAX];  /* the result folder (its real path when it already exists) */
    char parent[GMM_PATH_MAX];  /* the folder that holds target and the staging folder */
    char staging[GMM_PATH_MAX]; /* "<parent>/.<name>.gmm-new-XXXXXX", mode 0700 until committed */
    char created[GMM_OUTDIR_MAX_CREATED][GMM_PATH_MAX]; /* folders created for target, outermost first */
    int n_created;
    char warning[GMM_PATH_MAX + 200]; /* set by a commit that succeeded but could not remove the old set */
} gmm_outdir;

/* Prepares a new result for target: creates the missing folders above it (recording them), and the
 * staging folder, into which the caller writes every file of the set. Refuses a target that exists but
 * is not a folder, and one that is the current folder or holds it. While prepared, the signal handlers of
 * gmm_outdir_install_signal_handlers remove what this run made. GMM_ERR_IO (message set) on failure,
 * after removing anything it made. */
gmm_status gmm_outdir_begin(gmm_outdir *o, const char *target);

/* Swaps the staging folder in as target, holding an exclusive lock (flock of the parent folder) so that
 * commits into one folder follow each other: with renameat2(RENAME_EXCHANGE) when the file system has it,
 * otherwise by renaming the old folder aside and the new one in. Entries of the old folder that are not
 * gmm's outputs (the user's own files) are moved into the new one first. The old set is then removed; if
 * that fails, o->warning says where it was left. On failure the previous folder is as it was and the
 * staging folder is removed (GMM_ERR_IO, message set). */
gmm_status gmm_outdir_commit(gmm_outdir *o);

/* Removes the staging folder and the folders this run created (those still empty). */
void gmm_outdir_abort(gmm_outdir *o);

/* Installs handlers for SIGINT, SIGTERM and SIGHUP that stop a running gnuplot child, remove temporary
 * files (gmm_atomic_remove_temporaries) and the prepared result's staging and created folders, then end
 * the process with the same signal. */
void gmm_outdir_install_signal_handlers(void);

#endif /* GMM_OUTDIR_H */
