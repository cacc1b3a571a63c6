/* SPDX-License-Identifier: BSD-3-Clause */
/* export.c - write the files --pprof, --folded and --svg ask for. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "export.h"
#include "options.h"
#include "output.h"
#include "profile.h"
#include "session.h"

bool export_wanted(void)
{
	return env.pprof || env.folded || env.svg;
}

FILE *export_open(const char *path, char *tmp, size_t len)
{
	FILE *f;

	snprintf(tmp, len, "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		p_err("cannot create %s: %s; check the directory exists and is writable",
		      tmp, strerror(errno));
	return f;
}

int export_commit(FILE *f, const char *tmp, const char *path, int err)
{
	if (fflush(f) && !err)
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		p_err("cannot write %s: %s; check the disk has room", path,
		      strerror(-err));
		unlink(tmp);
	}
	return err;
}

int export_write(struct zt_session *s, __u64 min_age_ns)
{
	struct zt_profile p;
	int err, ret = 0;

	err = profile_collect(s, min_age_ns, true, &p);
	if (err)
		return err;
	if (env.pprof && (err = pprof_write(&p, env.pprof)))
		ret = err;
	if (env.folded && (err = folded_write(&p, env.folded)))
		ret = err;
	if (env.svg && (err = flamegraph_write(&p, env.svg)))
		ret = err;
	profile_free(&p);
	return ret;
}
