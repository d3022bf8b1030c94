//! A `Vec` whose length is bounded on the wire: decoding stops with an
//! error at element `MAX + 1`, before allocating for it, and never
//! pre-allocates more than `MAX` elements whatever length the sender
//! claims. A frame of millions of tiny elements (three bytes each on the
//! wire, tens of bytes each in memory) is thereby refused, not inflated.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, PartialEq)]
pub struct Bounded<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Bounded<T, MAX> {
    /// `None` when `items` has more than `MAX` elements.
    pub fn new(items: Vec<T>) -> Option<Bounded<T, MAX>> {
        (items.len() <= MAX).then_some(Bounded(items))
    }

    /// The first `MAX` elements of `items`.
    pub fn truncate(mut items: Vec<T>) -> Bounded<T, MAX> {
        items.truncate(MAX);
        Bounded(items)
    }

    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> Default for Bounded<T, MAX> {
    fn default() -> Self {
        Bounded(Vec::new())
    }
}

impl<T, const MAX: usize> Deref for Bounded<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: fmt::Debug, const MAX: usize> fmt::Debug for Bounded<T, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize, const MAX: usize> Serialize for Bounded<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Bounded<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const MAX: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVisitor<T, MAX> {
            type Value = Bounded<T, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a sequence of at most {MAX} elements")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                if seq.size_hint().is_some_and(|n| n > MAX) {
                    return Err(serde::de::Error::invalid_length(seq.size_hint().unwrap_or(0), &self));
                }
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX).min(64));
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(serde::de::Error::invalid_length(MAX + 1, &self));
                    }
                    items.push(item);
                }
                Ok(Bounded(items))
            }
        }

        deserializer.deserialize_seq(BoundedVisitor::<T, MAX>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_more_than_max_before_allocating_them() {
        let ok: Bounded<u8, 3> = postcard::from_bytes(&postcard::to_stdvec(&vec![1u8, 2, 3]).expect("enc")).expect("dec");
        assert_eq!(&*ok, &[1, 2, 3]);
        let over = postcard::to_stdvec(&vec![0u8; 4]).expect("enc");
        assert!(postcard::from_bytes::<Bounded<u8, 3>>(&over).is_err());
        // A length prefix claiming 2^32 elements with none behind it.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(postcard::from_bytes::<Bounded<u8, 3>>(&claim).is_err());
        assert!(Bounded::<u8, 2>::new(vec![1, 2, 3]).is_none());
        assert_eq!(Bounded::<u8, 2>::truncate(vec![1, 2, 3]).len(), 2);
    }
}
