import { listJobs, userByToken } from '../../../../lib/db';

export const dynamic = 'force-dynamic';

export async function GET(request) {
  const user = await userByToken(request.headers.get('authorization'));
  if (!user) {
    return Response.json(
      { error: { code: 'unauthenticated', message: 'a valid API token is required' } },
      { status: 401 },
    );
  }
  const asked = Number.parseInt(request.nextUrl.searchParams.get('limit'), 10);
  const limit = Math.min(Math.max(asked || 50, 1), 1000);
  const { jobs, more } = await listJobs(user.id, limit);
  return Response.json({ items: jobs, next_cursor: more ? jobs[jobs.length - 1].id : null });
}
