//! Signed statements: a postcard-encoded value, the signer's public key, and
//! an ed25519 signature, so a record can travel through any number of
//! gossiping peers and still be attributed to the node that made it.
//!
//! The signature covers `b"grove-signed-v1\0" ++ KIND ++ b"\0" ++ payload`.
//! The kind tag is the domain separation: a subnet grant can never be replayed
//! as a node record (or any other kind), even if the bytes happen to decode.

use std::fmt;
use std::marker::PhantomData;

use libp2p_identity::{Keypair, PeerId, PublicKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest payload we sign or accept: records are small, and a cap keeps a
/// hostile peer from making us decode megabytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Largest encoded [`Signed`] accepted by [`Signed::from_bytes`] (payload plus
/// a protobuf ed25519 key, a 64-byte signature and length prefixes).
pub const MAX_ENCODED: usize = MAX_PAYLOAD + 1024;

const DOMAIN: &[u8] = b"grove-signed-v1\0";

/// A value type that may be signed. `KIND` names it and its version, e.g.
/// `"grove/node/1"`; it must not contain a NUL byte.
pub trait RecordKind: Serialize + DeserializeOwned {
    const KIND: &'static str;
}

#[derive(Debug, thiserror::Error)]
pub enum SignedError {
    #[error("signer key is not a valid ed25519 public key")]
    BadKey,
    #[error("signature does not verify (tampered, wrong signer, or wrong record kind)")]
    BadSignature,
    #[error("malformed record: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("record too large: {0} bytes (limit {MAX_PAYLOAD} payload bytes)")]
    TooLarge(usize),
}

/// A `T` as signed by someone. Fields stay private so the only way to get a
/// `T` out is [`Signed::verify`].
#[derive(Serialize, Deserialize)]
pub struct Signed<T> {
    payload: Vec<u8>,
    /// Protobuf-encoded libp2p public key (ed25519 only).
    signer: Vec<u8>,
    signature: Vec<u8>,
    #[serde(skip)]
    kind: PhantomData<fn() -> T>,
}

/// The outcome of a successful [`Signed::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<T> {
    pub signer: PeerId,
    pub value: T,
}

impl<T: RecordKind> Signed<T> {
    /// Signs `value` with `keypair` (which must be ed25519).
    pub fn sign(value: &T, keypair: &Keypair) -> Result<Signed<T>, SignedError> {
        let payload = postcard::to_stdvec(value)?;
        if payload.len() > MAX_PAYLOAD {
            return Err(SignedError::TooLarge(payload.len()));
        }
        let public = keypair.public();
        public
            .clone()
            .try_into_ed25519()
            .map_err(|_| SignedError::BadKey)?;
        let signature = keypair
            .sign(&signed_message::<T>(&payload))
            .map_err(|_| SignedError::BadKey)?;
        Ok(Signed {
            payload,
            signer: public.encode_protobuf(),
            signature,
            kind: PhantomData,
        })
    }

    /// Checks the signature and decodes the value. Trailing bytes after the
    /// value are refused, so one payload has exactly one meaning.
    pub fn verify(&self) -> Result<Verified<T>, SignedError> {
        if self.payload.len() > MAX_PAYLOAD {
            return Err(SignedError::TooLarge(self.payload.len()));
        }
        let key = self.public_key()?;
        if !key.verify(&signed_message::<T>(&self.payload), &self.signature) {
            return Err(SignedError::BadSignature);
        }
        let (value, rest) = postcard::take_from_bytes(&self.payload)?;
        if !rest.is_empty() {
            return Err(SignedError::Malformed(
                postcard::Error::DeserializeBadEncoding,
            ));
        }
        Ok(Verified {
            signer: key.to_peer_id(),
            value,
        })
    }
}

impl<T> Signed<T> {
    /// Who claims to have signed this, WITHOUT checking the signature: for
    /// logs and for cheap routing decisions before [`Signed::verify`].
    pub fn signer(&self) -> Result<PeerId, SignedError> {
        Ok(self.public_key()?.to_peer_id())
    }

    /// Postcard encoding, for carrying a signed record on the wire.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SignedError> {
        Ok(postcard::to_stdvec(self)?)
    }

    /// Decodes [`Signed::to_bytes`] output; does not verify.
    pub fn from_bytes(bytes: &[u8]) -> Result<Signed<T>, SignedError> {
        if bytes.len() > MAX_ENCODED {
            return Err(SignedError::TooLarge(bytes.len()));
        }
        Ok(postcard::from_bytes(bytes)?)
    }

    /// The signer's key. Only its canonical protobuf encoding is accepted:
    /// prost would also take unknown or repeated fields, which would give
    /// one signed record endless byte encodings (defeating gossip's
    /// deduplication) and room to pad a record with junk the signature does
    /// not cover.
    fn public_key(&self) -> Result<PublicKey, SignedError> {
        let key = PublicKey::try_decode_protobuf(&self.signer).map_err(|_| SignedError::BadKey)?;
        key.clone()
            .try_into_ed25519()
            .map_err(|_| SignedError::BadKey)?;
        if key.encode_protobuf() != self.signer {
            return Err(SignedError::BadKey);
        }
        Ok(key)
    }

    /// Encoded size on the wire (payload, key and signature), for budgets.
    pub fn wire_len(&self) -> usize {
        self.payload.len() + self.signer.len() + self.signature.len() + 6
    }
}

fn signed_message<T: RecordKind>(payload: &[u8]) -> Vec<u8> {
    debug_assert!(
        !T::KIND.contains('\0'),
        "RecordKind::KIND must not contain NUL"
    );
    let mut msg = Vec::with_capacity(DOMAIN.len() + T::KIND.len() + 1 + payload.len());
    msg.extend_from_slice(DOMAIN);
    msg.extend_from_slice(T::KIND.as_bytes());
    msg.push(0);
    msg.extend_from_slice(payload);
    msg
}

// Hand-written so they do not demand `T: Clone`/`T: Debug`/... (T is only a tag).
impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Signed {
            payload: self.payload.clone(),
            signer: self.signer.clone(),
            signature: self.signature.clone(),
            kind: PhantomData,
        }
    }
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        (&self.payload, &self.signer, &self.signature)
            == (&other.payload, &other.signer, &other.signature)
    }
}

impl<T> Eq for Signed<T> {}

impl<T> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signer = self.signer().map(|p| p.to_string());
        f.debug_struct("Signed")
            .field("signer", &signer.as_deref().unwrap_or("<bad key>"))
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct A {
        name: String,
        n: u32,
    }
    impl RecordKind for A {
        const KIND: &'static str = "grove/test-a/1";
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct B {
        name: String,
        n: u32,
    }
    impl RecordKind for B {
        const KIND: &'static str = "grove/test-b/1";
    }

    fn sample() -> (Keypair, Signed<A>) {
        let kp = Keypair::generate_ed25519();
        let value = A {
            name: "edge-1".into(),
            n: 7,
        };
        let signed = Signed::sign(&value, &kp).expect("sign");
        (kp, signed)
    }

    #[test]
    fn roundtrip_through_bytes() {
        let (kp, signed) = sample();
        let back = Signed::<A>::from_bytes(&signed.to_bytes().expect("enc")).expect("dec");
        assert_eq!(back, signed);
        let v = back.verify().expect("verify");
        assert_eq!(v.signer, kp.public().to_peer_id());
        assert_eq!(
            v.value,
            A {
                name: "edge-1".into(),
                n: 7
            }
        );
        assert_eq!(back.signer().expect("signer"), v.signer);
    }

    #[test]
    fn flipped_payload_byte_fails() {
        let (_, mut signed) = sample();
        signed.payload[1] ^= 1;
        assert!(matches!(signed.verify(), Err(SignedError::BadSignature)));
    }

    #[test]
    fn swapped_signer_fails() {
        let (_, mut signed) = sample();
        signed.signer = Keypair::generate_ed25519().public().encode_protobuf();
        assert!(matches!(signed.verify(), Err(SignedError::BadSignature)));
    }

    #[test]
    fn other_kind_with_same_bytes_fails() {
        let (_, signed) = sample();
        let retyped: Signed<B> = Signed::from_bytes(&signed.to_bytes().expect("enc")).expect("dec");
        assert!(matches!(retyped.verify(), Err(SignedError::BadSignature)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [
            &b""[..],
            b"\xff\xff\xff\xff\xff",
            b"\x03abc\x01x\x00",
            &[0u8; 300],
        ] {
            if let Ok(s) = Signed::<A>::from_bytes(junk) {
                assert!(s.verify().is_err());
                let _ = format!("{s:?}");
            }
        }
        let (_, mut signed) = sample();
        signed.signer = b"not a key".to_vec();
        assert!(matches!(signed.verify(), Err(SignedError::BadKey)));
        assert!(signed.signer().is_err());
        let huge = Signed::<A> {
            payload: vec![0; MAX_PAYLOAD + 1],
            ..signed
        };
        assert!(matches!(huge.verify(), Err(SignedError::TooLarge(_))));
    }

    #[test]
    fn padded_signer_encodings_are_refused() {
        let (_, mut signed) = sample();
        // An unknown protobuf field (number 9, varint) after the key.
        signed.signer.extend_from_slice(&[0x48, 0x01]);
        assert!(PublicKey::try_decode_protobuf(&signed.signer).is_ok(), "prost accepts it");
        assert!(matches!(signed.verify(), Err(SignedError::BadKey)));
    }

    #[test]
    fn trailing_payload_bytes_are_refused() {
        let kp = Keypair::generate_ed25519();
        let mut payload = postcard::to_stdvec(&A {
            name: "x".into(),
            n: 1,
        })
        .expect("enc");
        payload.push(0);
        let signature = kp.sign(&signed_message::<A>(&payload)).expect("sign");
        let signer = kp.public().encode_protobuf();
        let s = Signed::<A> {
            payload,
            signer,
            signature,
            kind: PhantomData,
        };
        assert!(matches!(s.verify(), Err(SignedError::Malformed(_))));
    }
}
