//! `grove root --tls-self-signed`: a certificate the root makes for itself
//! on first start and reuses afterwards, so that a user pins it once
//! (`grove ... --ca <state-dir>/api-cert.pem`) and it stays valid.
//!
//! The key is written 0600 from its first byte, to a temporary name that
//! is renamed into place, and before the certificate: the certificate's
//! presence is what says "a complete pair exists", so a crash between
//! the two writes only means a fresh pair next time. A key that group or
//! others can read is refused, as the API token is.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};

use super::tls::{ServerTls, TlsError};

/// The certificate's file name in the state directory.
pub const CERT_FILE: &str = "api-cert.pem";
/// The key's file name in the state directory.
pub const KEY_FILE: &str = "api-key.pem";
/// How long a generated certificate is valid. Long, because an expired
/// pinned certificate takes the API down until someone acts; a user who
/// wants rotation deletes the two files and restarts the root.
const VALID_YEARS: i32 = 10;

/// Where a self-signed pair lives and whether this start made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfSigned {
    /// The certificate (what clients pass to `--ca`).
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// True when made now, false when an earlier start's pair was reused.
    pub created: bool,
}

/// The pair in `dir`, made for `names` if there is none yet. On reuse the
/// names are not compared: the certificate clients already pinned stays.
pub fn load_or_create(dir: &Path, names: &[String]) -> Result<(ServerTls, SelfSigned), TlsError> {
    let cert = dir.join(CERT_FILE);
    let key = dir.join(KEY_FILE);
    let created = !cert.exists();
    if created {
        create(&cert, &key, names)?;
    } else {
        check_private(&key)?;
    }
    let tls = ServerTls::from_files(&cert, &key)?;
    Ok((tls, SelfSigned { cert, key, created }))
}

/// The names a certificate for an API on `api` should carry: localhost and
/// the loopback addresses, this machine's host name, the bound address if
/// it is a specific one, then `extra` (`--tls-san`), without repeats.
/// An API on 0.0.0.0 is reached by addresses the root cannot know for
/// sure, which is what `--tls-san` is for.
pub fn default_names(api: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        IpAddr::V4(Ipv4Addr::LOCALHOST).to_string(),
        IpAddr::V6(Ipv6Addr::LOCALHOST).to_string(),
    ];
    if let Some(host) = host_name() {
        names.push(host);
    }
    if !api.ip().is_unspecified() {
        names.push(api.ip().to_string());
    }
    names.extend(extra.iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()));
    let mut unique = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    unique
}

/// The kernel's host name, if it is one a certificate can carry.
fn host_name() -> Option<String> {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name != "localhost"
        && name.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    valid.then_some(name)
}

fn create(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, "grove root API");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // From yesterday, so that a client whose clock is a little behind
    // does not see a certificate from the future.
    let (year, month, day) = civil_date(days_since_epoch().saturating_sub(1));
    params.not_before = rcgen::date_time_ymd(year, month, day);
    params.not_after = rcgen::date_time_ymd(year + VALID_YEARS, month, day.min(28));
    let dir = cert.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // 0700 as the token's directory: it will hold the key.
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| TlsError::Write {
            path: dir.to_owned(),
            source,
        })?;
    let key_pair = KeyPair::generate()?;
    let certificate = params.self_signed(&key_pair)?;
    write_atomically(key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(cert, certificate.pem().as_bytes(), 0o644)?;
    // The new names must survive a crash too.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| TlsError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Writes `bytes` to a temporary file created with `mode`, syncs it and
/// renames it to `path` (replacing a leftover of an earlier crash).
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let error = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    let temporary = path.with_file_name(name);
    let _ = fs::remove_file(&temporary); // a leftover of a crash of this same pid
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&temporary)?;
        // The umask may have taken bits from `mode` (0644 -> 0640); the
        // certificate is public and meant to be copied, so set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written.map_err(error)
}

/// Refuses a key file that group or others may read: it may already have
/// leaked, and quietly tightening the mode would hide that.
fn check_private(key: &Path) -> Result<(), TlsError> {
    let metadata = fs::metadata(key).map_err(|source| TlsError::Read {
        path: key.to_owned(),
        source,
    })?;
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyReadable {
            path: key.to_owned(),
            mode,
        });
    }
    Ok(())
}

fn days_since_epoch() -> i64 {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(seconds / 86_400).unwrap_or(0)
}

/// Year, month, day of a day count since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`), so that no date crate
/// is needed for two dates.
fn civil_date(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(1970),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_454), (2026, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
    }

    #[test]
    fn names_cover_loopback_the_bound_address_and_extras() {
        let names = default_names(
            "10.0.0.5:10000".parse().expect("addr"),
            &["root.example".into(), " ".into(), "10.0.0.5".into()],
        );
        assert_eq!(&names[..3], ["localhost", "127.0.0.1", "::1"]);
        assert!(names.contains(&"10.0.0.5".to_owned()) && names.contains(&"root.example".to_owned()));
        assert_eq!(names.iter().filter(|n| *n == "10.0.0.5").count(), 1, "{names:?}");
        let any = default_names("0.0.0.0:10000".parse().expect("addr"), &[]);
        assert!(!any.contains(&"0.0.0.0".to_owned()), "{any:?}");
    }
}
