//! One signature for a batch of jobs. An Ed25519 signature cost the engine about a tenth
//! of its CPU per run, and checking one cost a worker more than running a small step; so
//! the engine signs the root of a Merkle tree over the jobs it sends together (RFC 6962's
//! tree: SHA-256, leaves and inner nodes hashed under different prefixes), and each job
//! carries the root's signature and its path to the root (a [`Proof`]). A worker hashes
//! the path and checks the signature only for a root it has not checked before. A job is
//! believed exactly when the engine signed a set that holds it: to make another payload
//! reach a signed root would take a second preimage of SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub(crate) type Hash = [u8; 32];

pub(crate) fn leaf(payload: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(payload);
    h.finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two below `n` (n ≥ 2): where RFC 6962 splits a tree.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The tree's root, and every leaf's audit path (from the leaf's sibling up), with each
/// node hashed once: a batch of n jobs costs n - 1 inner hashes, not n per job.
pub(crate) fn tree(leaves: &[Hash]) -> (Hash, Vec<Vec<Hash>>) {
    fn build(leaves: &[Hash], paths: &mut [Vec<Hash>]) -> Hash {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = split(leaves.len());
        let (left_paths, right_paths) = paths.split_at_mut(k);
        let left = build(&leaves[..k], left_paths);
        let right = build(&leaves[k..], right_paths);
        left_paths.iter_mut().for_each(|p| p.push(right));
        right_paths.iter_mut().for_each(|p| p.push(left));
        node(&left, &right)
    }
    if leaves.is_empty() {
        return (Sha256::digest([]).into(), Vec::new());
    }
    let mut paths = vec![Vec::new(); leaves.len()];
    let root = build(leaves, &mut paths);
    (root, paths)
}

/// The root that `leaf` at `index` of a tree of `size` leaves reaches along `path`; `None`
/// when the path cannot belong to such a tree.
pub(crate) fn root_from_path(leaf: Hash, index: usize, size: usize, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    // The sides, from the root down, then applied from the leaf up.
    let mut sides = Vec::new();
    let (mut index, mut size) = (index, size);
    while size > 1 {
        let k = split(size);
        if index < k {
            sides.push(false);
            size = k;
        } else {
            sides.push(true);
            index -= k;
            size -= k;
        }
    }
    if sides.len() != path.len() {
        return None;
    }
    let mut h = leaf;
    for (sibling, right) in path.iter().zip(sides.iter().rev()) {
        h = if *right { node(sibling, &h) } else { node(&h, sibling) };
    }
    Some(h)
}

/// The longest path a proof may carry.
const MAX_PATH: usize = 16;

/// Most jobs under one signature: a path of at most [`MAX_PATH`] hashes.
pub(crate) const MAX_BATCH: usize = 1 << MAX_PATH;

/// The text a job's proof travels as: `m1.` and, base64url, the signature (64 bytes), the
/// batch's size and the job's index in it (4 bytes each, little-endian), then the path.
const PREFIX: &str = "m1.";

/// What makes one job of a signed batch believable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proof {
    pub signature: [u8; 64],
    pub size: u32,
    pub index: u32,
    pub path: Vec<Hash>,
}

/// The message the engine's key signs for a batch.
pub(crate) fn signed_message(root: &Hash) -> Vec<u8> {
    [b"crm job batch v1.".as_slice(), root.as_slice()].concat()
}

impl Proof {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(72 + 32 * self.path.len());
        bytes.extend_from_slice(&self.signature);
        bytes.extend_from_slice(&self.size.to_le_bytes());
        bytes.extend_from_slice(&self.index.to_le_bytes());
        for h in &self.path {
            bytes.extend_from_slice(h);
        }
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn decode(text: &str) -> Option<Proof> {
        let bytes = URL_SAFE_NO_PAD.decode(text.strip_prefix(PREFIX)?).ok()?;
        if bytes.len() < 72 || (bytes.len() - 72) % 32 != 0 || (bytes.len() - 72) / 32 > MAX_PATH {
            return None;
        }
        let signature: [u8; 64] = bytes[..64].try_into().ok()?;
        let size = u32::from_le_bytes(bytes[64..68].try_into().ok()?);
        let index = u32::from_le_bytes(bytes[68..72].try_into().ok()?);
        let path = bytes[72..].chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect();
        Some(Proof { signature, size, index, path })
    }

    /// The root this proof says `payload` belongs to, if the path fits its place.
    pub fn root(&self, payload: &[u8]) -> Option<Hash> {
        root_from_path(leaf(payload), self.index as usize, self.size as usize, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_of_every_size_reaches_the_root_and_no_other_place_does() {
        for n in 1..=20usize {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf(format!("job {i}").as_bytes())).collect();
            let (r, paths) = tree(&leaves);
            for i in 0..n {
                let p = &paths[i];
                assert_eq!(root_from_path(leaves[i], i, n, p), Some(r), "leaf {i} of {n}");
                // the same path from another index, or under another size, misses
                for j in (0..n).filter(|&j| j != i) {
                    assert_ne!(root_from_path(leaves[i], j, n, p), Some(r), "leaf {i} of {n} at {j}");
                }
                assert_ne!(root_from_path(leaf(b"other"), i, n, p), Some(r));
                assert_eq!(root_from_path(leaves[i], n, n, p), None);
            }
        }
    }

    #[test]
    fn an_inner_node_is_not_a_leaf() {
        let leaves: Vec<Hash> = (0..4).map(|i| leaf(&[i])).collect();
        // the bytes of the left subtree's children, offered as a payload, hash as a leaf
        let inner = [leaves[0], leaves[1]].concat();
        assert_ne!(leaf(&inner), node(&leaves[0], &leaves[1]));
    }

    #[test]
    fn proofs_round_trip_and_refuse_garbage() {
        let p = Proof { signature: [7; 64], size: 5, index: 3, path: vec![[1; 32], [2; 32]] };
        assert_eq!(Proof::decode(&p.encode()), Some(p));
        for bad in ["", "m1.", "m1.!!", "ab", &format!("m1.{}", URL_SAFE_NO_PAD.encode([0u8; 71]))] {
            assert_eq!(Proof::decode(bad), None, "{bad}");
        }
    }
}
