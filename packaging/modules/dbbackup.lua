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

-- Read before this file changes it: unset or empty means the XDG default.
local xdg_was_unset = (os.getenv("XDG_DATA_DIRS") or "") == ""

prepend_path("PATH", pathJoin(prefix, "bin"))
prepend_path("MANPATH", pathJoin(prefix, "share/man"))
-- An empty element keeps man's own search path (`man ls`): a MANPATH that was
-- unset would otherwise become this prefix alone.
append_path("MANPATH", "")
-- bash-completion's loader (and zsh/fish setups that read it) finds
-- share/bash-completion/completions/dbbackup through XDG_DATA_DIRS ...
prepend_path("XDG_DATA_DIRS", pathJoin(prefix, "share"))
-- (an unset XDG_DATA_DIRS meant /usr/local/share:/usr/share; they stay on it,
-- also after unload, where they mean what unset meant)
if xdg_was_unset and mode() == "load" then
    append_path("XDG_DATA_DIRS", "/usr/local/share:/usr/share")
end
-- ... and a bash without bash-completion gets it sourced on load (not on unload:
-- a leftover completion of a command no longer on PATH does no harm).
if myShellName() == "bash" then
    execute{cmd = "source " .. pathJoin(prefix, "share/bash-completion/completions/dbbackup"), modeA = {"load"}}
end
