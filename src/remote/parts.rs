//! A multipart upload, sent part by part, so that a part that fails is the
//! error reported: object_store's `WriteMultipart::finish` reports its abort's
//! failure instead, and a stalled store made that the failed DELETE, after a
//! second full timeout.

use std::fs::File;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use object_store::{MultipartUpload, PutPayload};

use crate::error::{Context, Error};

/// How long the abort of a failed upload may take: it is best-effort (a
/// bucket lifecycle rule removes what it leaves, docs/remote.md), and never
/// worth a second stall.
const ABORT_BOUND: Duration = Duration::from_secs(2);

/// Why a part failed: the part's number and the store's error.
pub(super) enum PartFail {
    Part(usize, object_store::Error),
    Complete(object_store::Error),
    Local(Error),
}

/// Send `file` in parts of `part` bytes, `in_flight` at once, handing each
/// part to `seen` in order; then complete the upload. On any failure the
/// upload is aborted within [`ABORT_BOUND`], and the failure is returned.
pub(super) async fn send(
    mut upload: Box<dyn MultipartUpload>,
    file: &mut File,
    part: usize,
    in_flight: usize,
    mut seen: impl FnMut(&[u8]),
) -> Result<(), PartFail> {
    let sent = async {
        let mut pending = FuturesUnordered::new();
        for n in 1.. {
            crate::signals::stop_if_requested().map_err(PartFail::Local)?;
            let mut bytes = vec![0u8; part];
            let len = super::client::read_some(file, &mut bytes)
                .context(|| "cannot read the backup file")
                .map_err(PartFail::Local)?;
            if len == 0 {
                break;
            }
            bytes.truncate(len);
            seen(&bytes);
            let put = upload.put_part(PutPayload::from(bytes));
            pending.push(async move { put.await.map_err(|e| PartFail::Part(n, e)) });
            while pending.len() >= in_flight {
                pending.next().await.transpose()?;
            }
            if len < part {
                break;
            }
        }
        while let Some(done) = pending.next().await {
            done?;
        }
        upload.complete().await.map_err(PartFail::Complete)?;
        Ok(())
    }
    .await;
    if sent.is_err() {
        // Best-effort: its own failure is never the one reported.
        let _ = tokio::time::timeout(ABORT_BOUND, upload.abort()).await;
    }
    sent
}
