#%Module1.0
## Environment Modules (Tcl) modulefile for the dbbackup standalone binary (release
## tarball); Lmod reads it too. packaging/install-prefix.sh (by default, or --tcl) writes it as
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

# Read before this file changes it: unset or empty means the XDG default.
set xdg_was_unset [expr {![info exists ::env(XDG_DATA_DIRS)] || $::env(XDG_DATA_DIRS) eq ""}]

prepend-path PATH          $prefix/bin
prepend-path MANPATH       $prefix/share/man
# An empty element keeps man's own search path (`man ls`): a MANPATH that was
# unset would otherwise become this prefix alone.
append-path  MANPATH       {}
# bash-completion's loader finds share/bash-completion/completions/dbbackup here ...
prepend-path XDG_DATA_DIRS $prefix/share
# (an unset XDG_DATA_DIRS meant /usr/local/share:/usr/share; they stay on it,
# also after unload, where they mean what unset meant)
if {$xdg_was_unset && [module-info mode load]} {
    append-path XDG_DATA_DIRS /usr/local/share:/usr/share
}
# ... and a bash without bash-completion gets it sourced on load, as the Lua file
# does (not on unload: a leftover completion of a command no longer on PATH does no
# harm). The file is bash's: other shells are left to their own setup. Only under
# Environment Modules (4.7+ names itself in ModuleTool), which evaluates what a
# modulefile puts on stdout; Lmod may show it as a message instead (Lmod users get
# the Lua file, which sources it, or bash-completion's loader).
if {[info exists ::ModuleTool] && $::ModuleTool eq "Modules"
        && [module-info mode load] && [module-info shell] eq "bash"} {
    puts stdout "source $prefix/share/bash-completion/completions/dbbackup;"
}
