/** Production settings for the benchmark peer (`next build` then `next start`). */
const nextConfig = {
  poweredByHeader: false,
  reactStrictMode: true,
  // pg is a Node.js library: keep it out of the server bundle.
  serverExternalPackages: ['pg'],
};
export default nextConfig;
