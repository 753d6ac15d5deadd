// The signed-in dashboard: a dynamic server component (it reads the session cookie),
// 20 jobs and 10 files from PostgreSQL rendered on the server.
import { cookies } from 'next/headers';
import { redirect } from 'next/navigation';
import { listFiles, listJobs, userBySession } from '../../lib/db';

export const metadata = { title: 'Dashboard · Forklift' };

function params(p) {
  return Object.entries(p ?? {}).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ');
}

export default async function Dashboard() {
  const jar = await cookies();
  const user = await userBySession(jar.get('session')?.value);
  if (!user) redirect('/signin');
  const [jobs, files] = await Promise.all([listJobs(user.id, 20), listFiles(user.id, 10)]);
  const csrf = jar.get('csrf')?.value ?? '';
  return (
    <>
      <a className="skip-link" href="#main">Skip to content</a>
      <header className="site-header">
        <div className="container header-inner">
          <a className="brand" href="/">Forklift</a>
          <nav className="nav" aria-label="Main">
            <a href="/dashboard" aria-current="page">Dashboard</a>
            <a href="/files">Files</a>
            <a href="/jobs">Jobs</a>
            <a href="/tokens">API tokens</a>
            <form className="inline" method="post" action="/signout">
              <input type="hidden" name="csrf" value={csrf} />
              <button className="link" type="submit" title={`Signed in as ${user.email}`}>Sign out</button>
            </form>
          </nav>
        </div>
      </header>
      <main id="main" className="container">
        <div className="page-head"><h1>Dashboard</h1></div>
        <div className="grid">
          <section className="card">
            <h2>Upload</h2>
            <form className="form upload" method="post" action="/files" encType="multipart/form-data">
              <input type="hidden" name="csrf" value={csrf} />
              <div className="dropzone">
                <label className="sr-only" htmlFor="file">File to upload</label>
                <input type="file" name="file" id="file" required />
                <p className="hint">Images, CSV files and videos, up to 512 MB.</p>
              </div>
              <div className="actions"><button className="btn primary" type="submit">Upload</button></div>
            </form>
          </section>
        </div>
        <section>
          <div className="page-head">
            <h2>Recent jobs</h2>
            {jobs.more && <div className="actions"><a className="btn small" href="/jobs">All jobs</a></div>}
          </div>
          {jobs.jobs.length === 0 ? <p className="empty">No jobs yet.</p> : (
            <div className="table-wrap">
              <table className="table">
                <thead><tr><th scope="col">Job</th><th scope="col">State</th><th scope="col">Progress</th><th scope="col">Parameters</th><th scope="col">Submitted</th></tr></thead>
                <tbody>
                  {jobs.jobs.map((job) => (
                    <tr key={job.id} data-job-id={job.id}>
                      <td><a href={`/jobs/${job.id}`}>{job.kind}</a></td>
                      <td><span className={`badge state-${job.state}`}>{job.state}</span></td>
                      <td><progress className="progress" max="100" value={job.progress}>{job.progress}%</progress> <span className="progress-text">{job.progress}%</span></td>
                      <td className="muted">{params(job.params)}</td>
                      <td><time dateTime={job.created_at}>{job.created_at.slice(0, 16).replace('T', ' ')}</time></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section>
          <div className="page-head">
            <h2>Recent files</h2>
            {files.more && <div className="actions"><a className="btn small" href="/files">All files</a></div>}
          </div>
          {files.files.length === 0 ? <p className="empty">No files yet.</p> : (
            <div className="table-wrap">
              <table className="table">
                <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col" className="num">Size</th><th scope="col">Stored</th></tr></thead>
                <tbody>
                  {files.files.map((f) => (
                    <tr key={f.id}><td><a href={`/files/${f.id}`}>{f.name}</a></td><td className="muted">{f.content_type}</td><td className="num">{f.size_bytes}</td><td>{new Date(Number(f.created_at)).toISOString()}</td></tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </main>
      <footer className="site-footer">
        <div className="container">Forklift · self-hosted file processing · <a href="/api/v1/openapi.json">JSON API</a></div>
      </footer>
    </>
  );
}
