//! Minimal JSON scanning for the answers the scenarios read: each app's
//! `latest_timestamp` in a polls answer, and `data.latest_timestamp` of a
//! fetch answer, without building a document tree (thousands of poll
//! answers a second go through it).

fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Returns the raw string contents (escapes left as is) and the index
/// after the closing quote.
fn string(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some((&b[i + 1..j], j + 1)),
            _ => j += 1,
        }
    }
    None
}

/// Index after the value starting at `i`.
fn skip(b: &[u8], i: usize) -> Option<usize> {
    let i = ws(b, i);
    match *b.get(i)? {
        b'"' => string(b, i).map(|(_, j)| j),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string(b, j)?.1;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') {
                j += 1;
            }
            Some(j)
        }
    }
}

/// Calls `f(key, value_start)` for each member of the object at `i`;
/// returns the index after the object.
fn members<'a>(
    b: &'a [u8],
    i: usize,
    mut f: impl FnMut(&'a [u8], usize) -> Option<()>,
) -> Option<usize> {
    let mut i = ws(b, i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        let (key, j) = string(b, ws(b, i))?;
        let j = ws(b, j);
        if b.get(j) != Some(&b':') {
            return None;
        }
        let v = ws(b, j + 1);
        f(key, v)?;
        let after = ws(b, skip(b, v)?);
        match b.get(after)? {
            b',' => i = after + 1,
            b'}' => return Some(after + 1),
            _ => return None,
        }
    }
}

fn int(b: &[u8], i: usize) -> Option<i64> {
    let end = skip(b, i)?;
    std::str::from_utf8(&b[i..end]).ok()?.trim().parse().ok()
}

/// `(appid, latest_timestamp)` for each app in the answer's `data`.
pub fn poll_timestamps(body: &[u8]) -> Option<Vec<(String, i64)>> {
    let mut out = Vec::new();
    members(body, 0, |k, v| {
        if k == b"data" && body.get(v) == Some(&b'{') {
            members(body, v, |app, info| {
                let mut ts = None;
                if body.get(info) == Some(&b'{') {
                    members(body, info, |field, fv| {
                        if field == b"latest_timestamp" {
                            ts = int(body, fv);
                        }
                        Some(())
                    })?;
                }
                if let Some(t) = ts {
                    out.push((String::from_utf8_lossy(app).into_owned(), t));
                }
                Some(())
            })?;
        }
        Some(())
    })?;
    Some(out)
}

/// `data.latest_timestamp` of a fetch answer.
pub fn fetch_timestamp(body: &[u8]) -> Option<i64> {
    let mut ts = None;
    members(body, 0, |k, v| {
        if k == b"data" && body.get(v) == Some(&b'{') {
            members(body, v, |f, fv| {
                if f == b"latest_timestamp" {
                    ts = int(body, fv);
                }
                Some(())
            })?;
        }
        Some(())
    })?;
    ts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_answer() {
        let body = br#"{"code":0,"data":{"a.b":{"instances":{"z":[{"hostname":"h}\"{","metadata":{"x":"}"},"latest_timestamp":1}]},"latest_timestamp":42},"c":{"instances":{},"scheduler":{"clients":{}},"latest_timestamp":7}},"error":{"-404":null},"message":"0"}"#;
        let v = poll_timestamps(body).expect("parse");
        assert_eq!(v, vec![("a.b".to_string(), 42), ("c".to_string(), 7)]);
        assert_eq!(
            poll_timestamps(br#"{"code":-304,"message":"-304"}"#),
            Some(vec![])
        );
        assert_eq!(poll_timestamps(br#"{"code":0,"data":{"#), None);
    }

    #[test]
    fn fetch_answer() {
        let body = br#"{"code":0,"message":"0","ttl":1,"data":{"instances":{"z":[{"latest_timestamp":1}]},"latest_timestamp":99}}"#;
        assert_eq!(fetch_timestamp(body), Some(99));
        assert_eq!(fetch_timestamp(b"garbage"), None);
    }
}
