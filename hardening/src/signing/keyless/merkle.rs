//! RFC 6962 (RFC 9162 §2.1.3) Merkle tree hashes and inclusion proofs.

use super::super::digest::sha256;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// The leaf hash of an entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut data = Vec::with_capacity(entry.len() + 1);
    data.push(0x00);
    data.extend_from_slice(entry);
    sha256(&data)
}

/// The hash of an inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut data = Vec::with_capacity(65);
    data.push(0x01);
    data.extend_from_slice(left);
    data.extend_from_slice(right);
    sha256(&data)
}

/// The root hash that an inclusion proof leads to from `leaf` at `index` in a tree of `size`
/// leaves (RFC 9162 §2.1.3.2). Fails when the proof's length does not fit the index and size.
/// The caller compares the result with the root it trusts.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, String> {
    if index >= size {
        return Err(format!(
            "leaf index {index} is not below the tree size {size}"
        ));
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(format!(
                "{} hashes is too many for leaf {index} of {size}",
                proof.len()
            ));
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(format!(
            "{} hashes is too few for leaf {index} of {size}",
            proof.len()
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root of `leaves` computed directly (RFC 9162 §2.1.1).
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => sha256(&[]),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// The audit path of leaf `m` (RFC 9162 §2.1.3.1).
    fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = n.next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    #[test]
    fn every_leaf_of_every_small_tree_proves_its_inclusion() {
        for size in 1..=33usize {
            let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&[i as u8])).collect();
            let root = mth(&leaves);
            for m in 0..size {
                let proof = path(m, &leaves);
                let got =
                    root_from_inclusion_proof(m as u64, size as u64, &leaves[m], &proof).unwrap();
                assert_eq!(got, root, "leaf {m} of {size}");
                // Any changed hash leads elsewhere.
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][0] ^= 1;
                    let got =
                        root_from_inclusion_proof(m as u64, size as u64, &leaves[m], &bad).unwrap();
                    assert_ne!(got, root);
                }
                // A proof of the wrong length is refused.
                let mut long = proof.clone();
                long.push([0; 32]);
                assert!(
                    root_from_inclusion_proof(m as u64, size as u64, &leaves[m], &long).is_err()
                );
                if !proof.is_empty() {
                    assert!(
                        root_from_inclusion_proof(m as u64, size as u64, &leaves[m], &proof[1..])
                            .is_err()
                    );
                }
            }
        }
        assert!(root_from_inclusion_proof(3, 3, &[0; 32], &[]).is_err());
    }
}
