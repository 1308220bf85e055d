//! What `r2-broker dev` prints once it is up: where everything is, a token, and a curl
//! walkthrough of one upload that can be pasted as is.

use std::path::PathBuf;
use std::time::Duration;

pub struct Banner {
    pub api: String,
    pub store: String,
    pub bucket: String,
    pub files: PathBuf,
    pub database: String,
    pub data_dir: PathBuf,
    /// ` --data-dir <dir>` when not the default, for the commands shown.
    pub dir_flag: Option<String>,
    pub first_run: bool,
    pub token: String,
}

impl Banner {
    pub fn render(&self, took: Duration) -> String {
        let Self { api, store, bucket, database, token, .. } = self;
        let (files, data_dir) = (self.files.display(), self.data_dir.display());
        let flag = self.dir_flag.as_deref().unwrap_or_default();
        let state = if self.first_run { "first run: credentials created" } else { "data reused" };
        let json =
            |file: &str, expr: &str| format!("python3 -c 'import json; print(json.load(open(\"{file}\")){expr})'");
        let put_cfg = "python3 -c 'import json; u = json.load(open(\"upload.json\")); \
            print(\"url =\", json.dumps(u[\"url\"])); \
            [print(\"header =\", json.dumps(k + \": \" + v)) for k, v in u[\"headers\"].items()]' > put.cfg";
        let auth = "-H \"authorization: Bearer $TOKEN\"";
        format!(
            "\n\
r2-broker dev is ready in {took:.1?} ({state}). Ctrl-C stops everything; the data stays in
{data_dir}  (delete it to start over).

  API         {api}   (spec: {api}/openapi.yaml, readiness: {api}/readyz)
  Demo page   {api}/#token={token}   (dev mode only; the token stays in the # part)
  JS client   {api}/client/r2-broker.js   (an ES module any origin can import; clients/js)
  S3 store    {store}   bucket `{bucket}`, files in {files}
  PostgreSQL  {database}
  Secrets     {data_dir}/dev.json (S3 keys, JWT secret)
  CORS        open to any origin on the API and the store: a browser page anywhere can upload

A token for owner `dev`, valid 30 days (HS256 with the dev JWT secret):
token: {token}

Another owner:  r2-broker dev token --owner alice{flag}   (add --admin for the admin scope;
                from a checkout: cargo run --release -- dev token --owner alice{flag})

One upload with curl (paste into another shell; needs curl and python3):

  cd \"$(mktemp -d)\"
  export API={api} TOKEN={token}
  printf 'hello from r2-broker\\n' > hello.txt
  # 1. an upload intent: the broker checks the rules, reserves quota and presigns a PUT
  curl -sS -X POST \"$API/v1/uploads\" {auth} -H 'content-type: application/json' -d \"{{\\\"filename\\\": \\\"hello.txt\\\", \\\"content_type\\\": \\\"text/plain\\\", \\\"size\\\": $(wc -c < hello.txt)}}\" | tee upload.json; echo
  # 2. the bytes go straight to the store, with exactly the headers it returned
  {put_cfg}
  curl -sS --fail-with-body -K put.cfg -T hello.txt -w 'store: %{{http_code}}\\n'
  # 3. complete: the broker checks the object with HeadObject and records the asset
  curl -sS -X POST \"$API/v1/uploads/$({upload_id})/complete\" {auth} | tee asset.json; echo
  # 4. a presigned download URL, then the bytes
  curl -sS \"$API/v1/assets/$({asset_id})/download-url\" {auth} | tee download.json; echo
  curl -sS \"$({download_url})\"
",
            upload_id = json("upload.json", "[\"upload_id\"]"),
            asset_id = json("asset.json", "[\"id\"]"),
            download_url = json("download.json", "[\"url\"]"),
        )
    }
}
