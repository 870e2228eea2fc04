# Spack recipe for the dbbackup release tarball: a prebuilt x86_64 Linux binary
# (glibc 2.17+) with man pages and completions, installed as it is laid out.
# The release's own copy (dist/spack/dbbackup/package.py, written by
# packaging/build-wheel.sh) carries the tarball's sha256. Copy that directory into
# the packages/ of a Spack repository of yours (`spack repo create`, `spack repo add`),
# point `url` at the tarball (file:///...) or serve it from a Spack mirror, then
# `spack install dbbackup`.
# Checked statically (packaging/ci-recipes.sh): Spack itself is not on PyPI.
from spack.package import *


class Dbbackup(Package):
    """Compressed, verified, online backups of SQLite results databases on SLURM
    clusters: one command-line binary (backup, restore, check, SLURM job hooks)."""

    # PLACEHOLDER addresses: the project has no public home or download site yet;
    # the tarball comes from a Spack mirror (above) until it has one.
    homepage = "https://example.invalid/dbbackup"
    url = "https://example.invalid/dbbackup/dbbackup-0.1.0-x86_64-linux-gnu.tar.gz"

    license("MIT OR Apache-2.0")

    version("0.1.0", sha256="@SHA256@")

    # A prebuilt binary: x86_64 Linux only, nothing to compile or depend on.
    requires("platform=linux", msg="dbbackup's release binary is for Linux")
    requires("target=x86_64:", msg="dbbackup's release binary is for x86_64")

    def install(self, spec, prefix):
        install_tree("bin", prefix.bin)
        install_tree("share", prefix.share)

    def setup_run_environment(self, env):
        # bash-completion finds share/bash-completion/completions/dbbackup here.
        env.prepend_path("XDG_DATA_DIRS", self.prefix.share)
