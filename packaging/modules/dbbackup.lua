-- Lmod modulefile for the dbbackup standalone binary (release tarball).
-- packaging/install-prefix.sh writes it as MODULEFILES/dbbackup/VERSION.lua with
-- @PREFIX@ and @VERSION@ filled in; by hand: copy it there and set `prefix`.
local prefix = "@PREFIX@"
local version = "@VERSION@"

help([[
dbbackup ]] .. version .. [[: compressed, verified, online backups of SQLite results
databases on SLURM clusters. Start with `dbbackup --help` or `man dbbackup`.
]])
whatis("Name: dbbackup")
whatis("Version: " .. version)
whatis("Description: compressed, verified, online backups of SQLite databases on SLURM clusters")
whatis("License: MIT OR Apache-2.0")

prepend_path("PATH", pathJoin(prefix, "bin"))
-- Lmod keeps the system's man pages reachable when MANPATH was unset.
prepend_path("MANPATH", pathJoin(prefix, "share/man"))
-- bash-completion's loader (and zsh/fish setups that read it) finds
-- share/bash-completion/completions/dbbackup through XDG_DATA_DIRS ...
prepend_path("XDG_DATA_DIRS", pathJoin(prefix, "share"))
-- ... and a bash without bash-completion gets it sourced on load (not on unload:
-- a leftover completion of a command no longer on PATH does no harm).
if myShellName() == "bash" then
    execute{cmd = "source " .. pathJoin(prefix, "share/bash-completion/completions/dbbackup"), modeA = {"load"}}
end
