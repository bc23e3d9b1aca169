/* The rows of badargs.c: ROW(name, expected status, call). Included twice,
 * once to define a function per row and once to build the table. */

/* fsc_open */
ROW(open_null_dir, FSC_EINVAL, fsc_open(NULL, NULL, &w.out_cache))
ROW(open_null_out, FSC_EINVAL, fsc_open(w.never, NULL, NULL))
ROW(open_empty_dir, FSC_EINVAL, fsc_open("", NULL, &w.out_cache))
ROW(open_regular_file, FSC_EINVAL, fsc_open(w.plain_file, NULL, &w.out_cache))
ROW(open_under_regular_file, FSC_EINVAL, fsc_open(w.under_plain_file, NULL, &w.out_cache))
ROW(open_size_zero, FSC_EINVAL, OPEN_WITH(size, 0))
ROW(open_size_short, FSC_EINVAL, OPEN_WITH(size, offsetof(fsc_options, pack_limit) - 1))
ROW(open_pack_limit_too_big, FSC_EINVAL, OPEN_WITH(pack_limit, FSC_PACK_LIMIT_MAX + 1))
ROW(open_expiration_negative, FSC_EINVAL, OPEN_WITH(expiration_ms, -2))
ROW(open_shared_group_negative, FSC_EINVAL, OPEN_WITH(shared_group, -2))
ROW(open_shared_group_not_a_gid, FSC_EINVAL, OPEN_WITH(shared_group, INT64_C(1) << 32))
ROW(open_network_mode_3, FSC_EINVAL, OPEN_WITH(network_mode, 3))
ROW(open_network_mode_negative, FSC_EINVAL, OPEN_WITH(network_mode, -1))
ROW(open_foreign_dir, FSC_EFORMAT, fsc_open(w.foreign, NULL, &w.out_cache))
ROW(open_other_format, FSC_EFORMAT, fsc_open(w.other_format, NULL, &w.out_cache))
ROW(open_bad_marker, FSC_EFORMAT, fsc_open(w.bad_marker, NULL, &w.out_cache))

/* fsc_set */
ROW(set_null_cache, FSC_EINVAL, fsc_set(NULL, "k", 1, "v", 1))
ROW(set_null_key, FSC_EINVAL, fsc_set(w.c, NULL, 1, "v", 1))
ROW(set_null_key_empty, FSC_EINVAL, fsc_set(w.c, NULL, 0, "v", 1))
ROW(set_null_data, FSC_EINVAL, fsc_set(w.c, "k", 1, NULL, 5))
ROW(set_empty_key, FSC_EINVAL, fsc_set(w.c, "k", 0, "v", 1))
ROW(set_long_key, FSC_EINVAL, fsc_set(w.c, long_key, FSC_MAX_KEY + 1, "v", 1))
ROW(set_huge_key, FSC_EINVAL, fsc_set(w.c, long_key, SIZE_MAX, "v", 1))

/* fsc_set_file */
ROW(set_file_null_cache, FSC_EINVAL, fsc_set_file(NULL, "k", 1, -1, w.plain_file, 0))
ROW(set_file_null_key, FSC_EINVAL, fsc_set_file(w.c, NULL, 1, -1, w.plain_file, 0))
ROW(set_file_empty_key, FSC_EINVAL, fsc_set_file(w.c, "k", 0, -1, w.plain_file, 0))
ROW(set_file_long_key, FSC_EINVAL, fsc_set_file(w.c, long_key, FSC_MAX_KEY + 1, -1, w.plain_file, 0))
ROW(set_file_flag_2, FSC_EINVAL, fsc_set_file(w.c, "k", 1, -1, w.plain_file, 2))
ROW(set_file_flags_all, FSC_EINVAL, fsc_set_file(w.c, "k", 1, -1, w.plain_file, ~0u))
ROW(set_file_move_no_path, FSC_EINVAL, fsc_set_file(w.c, "k", 1, w.dir_fd, NULL, FSC_MOVE))
ROW(set_file_nothing, FSC_EINVAL, fsc_set_file(w.c, "k", 1, -1, NULL, 0))
ROW(set_file_move_nothing, FSC_EINVAL, fsc_set_file(w.c, "k", 1, -1, NULL, FSC_MOVE))
ROW(set_file_pipe, FSC_EINVAL, fsc_set_file(w.c, "k", 1, w.pipe_fd, NULL, 0))
ROW(set_file_directory_fd, FSC_EINVAL, fsc_set_file(w.c, "k", 1, w.dir_fd, NULL, 0))
ROW(set_file_directory_path, FSC_EINVAL, fsc_set_file(w.c, "k", 1, -1, w.dir, 0))

/* fsc_get */
ROW(get_null_cache, FSC_EINVAL, fsc_get(NULL, "k", 1, &w.out_entry))
ROW(get_null_key, FSC_EINVAL, fsc_get(w.c, NULL, 1, &w.out_entry))
ROW(get_null_out, FSC_EINVAL, fsc_get(w.c, "k", 1, NULL))
ROW(get_empty_key, FSC_EINVAL, fsc_get(w.c, "k", 0, &w.out_entry))
ROW(get_long_key, FSC_EINVAL, fsc_get(w.c, long_key, FSC_MAX_KEY + 1, &w.out_entry))

/* fsc_delete */
ROW(delete_null_cache, FSC_EINVAL, fsc_delete(NULL, "k", 1))
ROW(delete_null_key, FSC_EINVAL, fsc_delete(w.c, NULL, 1))
ROW(delete_empty_key, FSC_EINVAL, fsc_delete(w.c, "k", 0))
ROW(delete_long_key, FSC_EINVAL, fsc_delete(w.c, long_key, FSC_MAX_KEY + 1))

/* fsc_entry_read */
ROW(read_null_entry, FSC_EINVAL, fsc_entry_read(NULL, w.buf, sizeof w.buf, &w.got))
ROW(read_null_got, FSC_EINVAL, fsc_entry_read(w.e, w.buf, sizeof w.buf, NULL))
ROW(read_null_buf, FSC_EINVAL, fsc_entry_read(w.e, NULL, 4, &w.got))

/* fsc_lock, fsc_unlock, fsc_lock_holder */
ROW(lock_null_cache, FSC_EINVAL, fsc_lock(NULL, "k", 1, 0, &w.out_lock))
ROW(lock_null_key, FSC_EINVAL, fsc_lock(w.c, NULL, 1, 0, &w.out_lock))
ROW(lock_empty_key, FSC_EINVAL, fsc_lock(w.c, "k", 0, 0, &w.out_lock))
ROW(lock_long_key, FSC_EINVAL, fsc_lock(w.c, long_key, FSC_MAX_KEY + 1, 0, &w.out_lock))
ROW(lock_null_out, FSC_EINVAL, fsc_lock(w.c, "k", 1, 0, NULL))
ROW(lock_bad_timeout, FSC_EINVAL, fsc_lock(w.c, "k", 1, -2, &w.out_lock))
ROW(unlock_null, FSC_EINVAL, fsc_unlock(NULL))
ROW(holder_null_cache, FSC_EINVAL, fsc_lock_holder(NULL, "k", 1, &w.pid))
ROW(holder_null_key, FSC_EINVAL, fsc_lock_holder(w.c, NULL, 1, &w.pid))
ROW(holder_empty_key, FSC_EINVAL, fsc_lock_holder(w.c, "k", 0, &w.pid))
ROW(holder_null_pid, FSC_EINVAL, fsc_lock_holder(w.c, "k", 1, NULL))

/* fsc_get_or_create */
ROW(goc_null_cache, FSC_EINVAL, fsc_get_or_create(NULL, "g", 1, -1, creator, NULL, &w.out_entry))
ROW(goc_null_key, FSC_EINVAL, fsc_get_or_create(w.c, NULL, 1, -1, creator, NULL, &w.out_entry))
ROW(goc_empty_key, FSC_EINVAL, fsc_get_or_create(w.c, "g", 0, -1, creator, NULL, &w.out_entry))
ROW(goc_null_creator, FSC_EINVAL, fsc_get_or_create(w.c, "g", 1, -1, NULL, NULL, &w.out_entry))
ROW(goc_null_out, FSC_EINVAL, fsc_get_or_create(w.c, "g", 1, -1, creator, NULL, NULL))
ROW(goc_bad_expiration, FSC_EINVAL, fsc_get_or_create(w.c, "g", 1, -2, creator, NULL, &w.out_entry))

/* Housekeeping */
ROW(invalidate_null, FSC_EINVAL, fsc_invalidate(NULL, 1))
ROW(prune_null, FSC_EINVAL, fsc_prune(NULL))
ROW(clear_null, FSC_EINVAL, fsc_clear(NULL))
ROW(stats_null_cache, FSC_EINVAL, fsc_stats(NULL, &w.stats))
ROW(stats_null_out, FSC_EINVAL, fsc_stats(w.c, NULL))
ROW(verify_null_cache, FSC_EINVAL, fsc_verify(NULL, 0, NULL))
ROW(foreach_null_cache, FSC_EINVAL, fsc_foreach(NULL, visitor, NULL))
ROW(foreach_null_visitor, FSC_EINVAL, fsc_foreach(w.c, NULL, NULL))
