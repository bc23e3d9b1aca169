/* Lua part of the fsc SWIG interface (included by ../fsc.i under SWIGLUA).
 *
 * The generated module, fsc_core, is the raw C API with Lua types: byte
 * buffers are Lua strings (binary safe), out-parameters become extra return
 * values after the int status. A few native functions do what plain Lua
 * cannot: read a value into a string, turn an entry into an io file handle,
 * run a Lua creator function, find a Lua file's descriptor. The idiomatic
 * API is fsc.lua. */

/* (pointer, length) pairs are Lua strings (numbers are converted). */
%typemap(in, checkfn="lua_isstring") (const void *key, size_t key_len),
                                     (const void *data, size_t len)
%{ $1 = ($1_ltype)lua_tolstring(L, $input, &$2); %}

/* An empty or nil path is NULL ("no path"). */
%typemap(in, checkfn="SWIG_lua_isnilstring") const char *path
%{ $1 = lua_isnil(L, $input) ? NULL : (char *)lua_tostring(L, $input);
   if ($1 && !*$1)
       $1 = NULL; %}

/* fsc_get_or_create, fsc_foreach and the entry reads (ignored in ../fsc.i)
 * are replaced by the natives below, which take Lua functions and strings. */
%{
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

/* entry_value(entry) -> string | nil, status, message
 * The value from the remembered offset on, read through fsc_entry_read so
 * that the checksum is checked at the end. */
static int fsc_lua_entry_value(lua_State *L) {
    fsc_entry *e = NULL;
    luaL_Buffer b;
    if (!SWIG_IsOK(SWIG_ConvertPtr(L, 1, (void **)&e, SWIGTYPE_p_fsc_entry, 0)) || !e)
        return luaL_argerror(L, 1, "fsc_entry expected");
    luaL_buffinit(L, &b);
    for (;;) {
        size_t got = 0;
        char *p = luaL_prepbuffer(&b);
        int rc = fsc_entry_read(e, p, LUAL_BUFFERSIZE, &got);
        if (rc != FSC_OK) {
            lua_pushnil(L);
            lua_pushinteger(L, rc);
            lua_pushstring(L, fsc_errmsg());
            return 3;
        }
        if (got == 0)
            break;
        luaL_addsize(&b, got);
    }
    luaL_pushresult(&b);
    return 1;
}

static int fsc_lua_stream_close(lua_State *L) {
    luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
    int ok = fclose(s->f) == 0;
    int err = errno;
    s->closef = NULL;
    if (ok) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, strerror(err));
    lua_pushinteger(L, err);
    return 3;
}

/* entry_file(entry) -> io file | nil, message
 * A read-only io file on a duplicate of the entry's descriptor, which shares
 * its position (the remembered offset); independent of the entry's life. */
static int fsc_lua_entry_file(lua_State *L) {
    fsc_entry *e = NULL;
    luaL_Stream *s;
    int fd;
    if (!SWIG_IsOK(SWIG_ConvertPtr(L, 1, (void **)&e, SWIGTYPE_p_fsc_entry, 0)) || !e)
        return luaL_argerror(L, 1, "fsc_entry expected");
    s = (luaL_Stream *)lua_newuserdatauv(L, sizeof *s, 0);
    s->f = NULL;
    s->closef = NULL; /* a half-made handle is "closed" */
    luaL_setmetatable(L, LUA_FILEHANDLE);
    fd = fcntl(fsc_entry_fd(e), F_DUPFD_CLOEXEC, 0);
    if (fd < 0 || !(s->f = fdopen(fd, "rb"))) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "FSC_EIO: duplicating the entry's descriptor: %s", strerror(err));
        return 2;
    }
    s->closef = fsc_lua_stream_close;
    return 1;
}

/* file_fd(io file) -> descriptor, with its offset moved to the file's
 * logical position (buffered reads run ahead of it). */
static int fsc_lua_file_fd(lua_State *L) {
    luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
    off_t pos;
    if (!s->closef || !s->f)
        return luaL_argerror(L, 1, "closed file");
    fflush(s->f);
    pos = ftello(s->f);
    if (pos >= 0)
        lseek(fileno(s->f), pos, SEEK_SET);
    lua_pushinteger(L, fileno(s->f));
    return 1;
}

struct fsc_lua_creator {
    lua_State *L;
    int fn;  /* stack index of the Lua function */
    int err; /* stack index of the slot for its error */
    fsc_cache *c;
    const void *key;
    size_t key_len;
    int rc;
};

/* Runs under lua_pcall (1: the creator's state, 2: the Lua function), so a
 * Lua error never unwinds through the library. */
static int fsc_lua_creator_body(lua_State *L) {
    struct fsc_lua_creator *cr = (struct fsc_lua_creator *)lua_touserdata(L, 1);
    const char *v;
    size_t len;
    lua_pushvalue(L, 2);
    lua_pushlstring(L, (const char *)cr->key, cr->key_len);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "creator returned %s, not a string", luaL_typename(L, -1));
    v = lua_tolstring(L, -1, &len);
    cr->rc = fsc_set(cr->c, cr->key, cr->key_len, v, len);
    if (cr->rc != FSC_OK)
        return luaL_error(L, "%s: %s", fsc_strerror(cr->rc), fsc_errmsg());
    return 0;
}

static int fsc_lua_creator(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    struct fsc_lua_creator *cr = (struct fsc_lua_creator *)ctx;
    lua_State *L = cr->L;
    cr->c = c;
    cr->key = key;
    cr->key_len = key_len;
    cr->rc = -1;
    lua_pushcfunction(L, fsc_lua_creator_body); /* the stack was checked */
    lua_pushlightuserdata(L, cr);
    lua_pushvalue(L, cr->fn);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        lua_replace(L, cr->err);
        return 1;
    }
    return 0;
}

/* get_or_create(cache, key, expiration_ms, fn)
 *   -> status, entry | nil, creator error | nil */
static int fsc_lua_get_or_create(lua_State *L) {
    struct fsc_lua_creator cr;
    fsc_cache *c = NULL;
    fsc_entry *e = NULL;
    size_t key_len;
    const char *key;
    lua_Integer exp;
    int rc;
    if (!SWIG_IsOK(SWIG_ConvertPtr(L, 1, (void **)&c, SWIGTYPE_p_fsc_cache, 0)))
        return luaL_argerror(L, 1, "fsc_cache expected");
    key = luaL_checklstring(L, 2, &key_len);
    exp = luaL_optinteger(L, 3, -1);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    lua_settop(L, 4);
    lua_pushnil(L); /* 5: the creator's error */
    luaL_checkstack(L, 8, "get_or_create");
    memset(&cr, 0, sizeof cr);
    cr.L = L;
    cr.fn = 4;
    cr.err = 5;
    rc = fsc_get_or_create(c, key, key_len, (int64_t)exp, fsc_lua_creator, &cr, &e);
    lua_pushinteger(L, rc);
    if (e)
        SWIG_NewPointerObj(L, e, SWIGTYPE_p_fsc_entry, 0);
    else
        lua_pushnil(L);
    lua_pushvalue(L, 5);
    return 3;
}
%}

%native(entry_value) int fsc_lua_entry_value(lua_State *L);
%native(entry_file) int fsc_lua_entry_file(lua_State *L);
%native(file_fd) int fsc_lua_file_fd(lua_State *L);
%native(get_or_create) int fsc_lua_get_or_create(lua_State *L);

