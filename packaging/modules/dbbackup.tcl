#%Module1.0
## Environment Modules (Tcl) modulefile for the dbbackup standalone binary (release
## tarball); Lmod reads it too. packaging/install-prefix.sh --tcl writes it as
## MODULEFILES/dbbackup/VERSION with @PREFIX@ and @VERSION@ filled in.
set prefix  "@PREFIX@"
set version "@VERSION@"

proc ModulesHelp { } {
    global version
    puts stderr "dbbackup $version: compressed, verified, online backups of SQLite results"
    puts stderr "databases on SLURM clusters. Start with `dbbackup --help` or `man dbbackup`."
}
module-whatis "Name: dbbackup"
module-whatis "Version: $version"
module-whatis "Description: compressed, verified, online backups of SQLite databases on SLURM clusters"
module-whatis "License: MIT OR Apache-2.0"

prepend-path PATH          $prefix/bin
prepend-path MANPATH       $prefix/share/man
# bash-completion's loader finds share/bash-completion/completions/dbbackup here.
prepend-path XDG_DATA_DIRS $prefix/share
