//! One module per subcommand: thin glue over the core modules.

pub(crate) mod adopt;
pub(crate) mod auto;
pub(crate) mod backup;
pub(crate) mod check;
pub(crate) mod docs;
pub(crate) mod export;
pub(crate) mod final_job;
pub(crate) mod init;
pub(crate) mod list;
pub(crate) mod lock;
pub(crate) mod periodic;
pub(crate) mod post_job;
pub(crate) mod pre_job;
pub(crate) mod prune;
pub(crate) mod report;
pub(crate) mod restore;
pub(crate) mod run;
pub(crate) mod summary;
pub(crate) mod sync;
pub(crate) mod templates;
pub(crate) mod verify;

use crate::cli::Command;
use crate::config::Settings;
use crate::error::Result;
use crate::exit_code::ExitCode;
use crate::slurm::job::JobContext;
use crate::store::{BackupDir, BackupSet, DbId};

/// Everything a command needs: the settings are final (`config::resolve` has
/// merged the command's own flags in).
pub(crate) struct Ctx {
    pub settings: Settings,
    pub job: JobContext,
}

impl Ctx {
    pub(crate) fn backup_dir(&self) -> BackupDir {
        BackupDir::new(&self.settings.backup_dir)
    }

    /// The configured database as backups record it, if one is configured.
    pub(crate) fn db_id(&self) -> Option<DbId> {
        self.settings.db_path.as_deref().map(DbId::of)
    }

    /// The configured database's view of `dir`; without one, the whole directory.
    pub(crate) fn backup_set(&self, dir: &BackupDir) -> Result<BackupSet> {
        match self.db_id() {
            Some(db) => dir.set(&db),
            None => Ok(BackupSet::whole_dir(dir.entries()?)),
        }
    }

    /// Wait for the lock up to `lock_timeout_seconds`, or fail naming the holder.
    /// A missing directory is created only once the database has been read.
    pub(crate) fn lock(&self, dir: &BackupDir) -> Result<crate::lock::DirLock> {
        match self.settings.db_path.as_deref() {
            Some(db) => crate::create::prepare_dir(&self.settings, dir, db)?,
            None => dir.ensure_exists()?,
        }
        crate::lock::DirLock::acquire(dir.path(), &self.job, self.settings.lock_timeout)
    }

    pub(crate) fn output(&self, format: crate::cli::Format) -> crate::output::Output {
        crate::output::Output {
            quiet: self.settings.quiet,
            format,
        }
    }
}

/// Run the command; `Ok` is how a command that ran to the end came out.
pub(crate) fn dispatch(command: &Command, ctx: &Ctx) -> Result<ExitCode> {
    // Before anything is created: the modes of what every command makes.
    crate::store::perms::decide(ctx.settings.shared, ctx.settings.db_path.as_deref());
    // Whose the seed's legacy files are: only the config file can say.
    crate::store::ownership::configure(
        ctx.settings
            .db_path
            .as_deref()
            .filter(|_| ctx.settings.dir_configured)
            .map(|db| (db, ctx.settings.backup_dir.as_path())),
    );
    // A broken mirror is named with where it is configured.
    crate::mirror::configure(ctx.settings.mirrors_in_file.as_deref());
    // A remote that is not an s3:// URL is a bad setting for every command, as
    // an out-of-range number is: not a surprise at the first upload.
    // One from the file is named with the file and line, as every other key.
    if let Some(url) = &ctx.settings.remote {
        crate::remote::RemoteUrl::parse(url).map_err(|e| match &ctx.settings.remote_in_file {
            Some((path, line)) => crate::error::Error::Config {
                path: path.clone(),
                line: *line,
                message: e.to_string(),
            },
            None => e,
        })?;
    }
    match command {
        Command::Backup(args) => backup::run(ctx, args),
        Command::List(args) => list::run(ctx, args),
        Command::Restore(args) => restore::run(ctx, args),
        Command::Export(args) => export::run(ctx, args),
        Command::Adopt(args) => adopt::run(ctx, args),
        Command::Auto(args) => auto::run(ctx, args),
        Command::Verify(args) => verify::run(ctx, args),
        Command::Prune(args) => prune::run(ctx, args),
        Command::PreJob(args) => pre_job::run(ctx, args),
        Command::Run(args) => run::run(ctx, args),
        Command::PostJob(args) => post_job::run(ctx, args),
        Command::Periodic(args) => periodic::run(ctx, args),
        Command::Final(args) => final_job::run(ctx, args),
        Command::Sync(args) => sync::run(ctx, args),
        Command::Lock(args) => lock::run(ctx, args),
        Command::Check(args) => check::run(ctx, args),
        Command::Summary(args) => summary::run(ctx, args),
        Command::Templates(args) => templates::run(ctx, args),
        Command::Init(args) => init::run(ctx, args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(ctx, args),
    }
}
