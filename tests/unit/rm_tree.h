/*
 * rm_tree.h - removes a test's temporary directory and everything under it, with nftw: no shell
 * and no rm per call (a shell and rm per store cost test_store_incr a tenth of its time), and a
 * path is never part of a command. Only for directories a test made itself (mkdtemp).
 */
#ifndef EF_TEST_RM_TREE_H
#define EF_TEST_RM_TREE_H

#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

static inline int rm_tree_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* 0, or -1 with errno set (the first entry that could not be removed). */
static inline int rm_tree(const char *dir)
{
    return nftw(dir, rm_tree_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
