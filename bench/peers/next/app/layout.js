export const metadata = {
  title: 'Forklift',
  description: 'Your recent files and jobs.',
};

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
