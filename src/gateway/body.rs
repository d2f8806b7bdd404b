//! A vendor answer's body as it arrives in chunks, collected into one buffer without needless
//! copies.

use bytes::{Bytes, BytesMut};

/// A vendor body as it arrives in chunks: a body that came in one chunk (a get, a small page)
/// is kept as that chunk, without a copy; more chunks are copied into one buffer, sized from
/// `Content-Length` when the vendor sent one, so a 250 KB answer is not copied again each time
/// the buffer doubles.
pub(super) struct Collected {
    /// The vendor's `Content-Length`: the buffer's size once a second chunk arrives.
    declared: Option<usize>,
    chunks: Chunks,
}

enum Chunks {
    None,
    One(Bytes),
    Many(BytesMut),
}

impl Collected {
    pub(super) fn new(declared: Option<usize>) -> Collected {
        Collected {
            declared,
            chunks: Chunks::None,
        }
    }

    pub(super) fn len(&self) -> usize {
        match &self.chunks {
            Chunks::None => 0,
            Chunks::One(b) => b.len(),
            Chunks::Many(b) => b.len(),
        }
    }

    pub(super) fn push(&mut self, chunk: Bytes) {
        self.chunks = match std::mem::replace(&mut self.chunks, Chunks::None) {
            Chunks::None => Chunks::One(chunk),
            Chunks::One(first) => {
                let size = self.declared.unwrap_or(0).max(first.len() + chunk.len());
                let mut all = BytesMut::with_capacity(size);
                all.extend_from_slice(&first);
                all.extend_from_slice(&chunk);
                Chunks::Many(all)
            }
            Chunks::Many(mut all) => {
                all.extend_from_slice(&chunk);
                Chunks::Many(all)
            }
        };
    }

    pub(super) fn into_bytes(self) -> Bytes {
        match self.chunks {
            Chunks::None => Bytes::new(),
            Chunks::One(b) => b,
            Chunks::Many(b) => b.freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(declared: Option<usize>, chunks: &[&'static [u8]]) -> Bytes {
        let mut body = Collected::new(declared);
        for c in chunks {
            body.push(Bytes::from_static(c));
        }
        assert_eq!(body.len(), chunks.iter().map(|c| c.len()).sum::<usize>());
        body.into_bytes()
    }

    #[test]
    fn chunks_come_back_whole_and_in_order() {
        assert_eq!(collect(None, &[]), Bytes::new());
        assert_eq!(collect(Some(5), &[b"hello"]), "hello");
        assert_eq!(
            collect(Some(11), &[b"hello", b" ", b"world"]),
            "hello world"
        );
        // A wrong Content-Length only sizes the buffer; the bytes are what arrived.
        assert_eq!(collect(Some(2), &[b"abc", b"def"]), "abcdef");
        assert_eq!(collect(None, &[b"abc", b"def", b"g"]), "abcdefg");
    }

    #[test]
    fn a_single_chunk_is_kept_without_a_copy() {
        let chunk = Bytes::from(vec![7u8; 1000]);
        let mut body = Collected::new(Some(1000));
        body.push(chunk.clone());
        assert_eq!(body.into_bytes().as_ptr(), chunk.as_ptr());
    }
}
